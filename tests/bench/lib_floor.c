/* The memory floor under skiffd: a process that links the libraries skiffd
 * links (raft, libuv, OpenSSL, jansson, libcurl, http-parser) and
 * initialises them the way skiffd does -- one TLS context, libcurl's global
 * state and a multi handle, a libuv loop -- and does nothing else. Prints its
 * own RSS, the part of it that is file pages (library code and data read
 * from disk, shared with every other process that maps them) and the
 * anonymous part, in KiB: what any process on these libraries pays before
 * doing any work. compare-swarm.sh prints it next to skiffd's figures.
 *
 *   build/tests/lib_floor    ->  "rss 11284 file 9656 anon 1628"
 */
#include <curl/curl.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <raft.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            sscanf(line + n + 1, "%ld", &kb);
    fclose(f);
    return kb;
}

int main(void)
{
    uv_loop_t loop;
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    CURLcode crc = curl_global_init(CURL_GLOBAL_ALL);
    CURLM *multi = curl_multi_init();
    json_t *obj = json_pack("{s:s}", "raft", raft_strerror(RAFT_NOMEM));
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    if (!ctx || crc != CURLE_OK || !multi || !obj || uv_loop_init(&loop) != 0) {
        fprintf(stderr, "lib_floor: initialising the libraries failed\n");
        return 1;
    }
    printf("rss %ld file %ld anon %ld\n", status_kb("VmRSS"),
           status_kb("RssFile"), status_kb("RssAnon"));
    uv_loop_close(&loop);
    json_decref(obj);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    SSL_CTX_free(ctx);
    return 0;
}
