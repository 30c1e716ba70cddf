/* Linked with `link_whole` against a pure layer (lib/, manager/core/) and
 * that layer's own dependencies only: every object of the layer is in the
 * link, so a call into a library the layer must not use (libuv, libraft,
 * libcurl) leaves an undefined symbol and fails the build. */
int main(void)
{
    return 0;
}
