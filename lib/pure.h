/* Forced into every file of lib/ and manager/core/ (`-include`, see
 * meson.build): those layers are pure -- no event loop, no Raft, no HTTP --
 * so the headers of libuv, libraft, libcurl and http-parser must not reach
 * them, not even through another header. Each of these names is declared
 * by one of those headers; poisoned, any include of them fails the
 * build. */
#pragma GCC poison uv_loop_t raft_fsm CURL http_parser
