#include "version.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <raft.h>
#include <uv.h>

#include "skiff_config.h"

const char *sk_version(void)
{
    return SKIFF_VERSION;
}

void sk_version_print(FILE *f, const char *program)
{
    curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
    fprintf(f, "%s %s\n", program, SKIFF_VERSION);
    /* libraft 0.22 declares raft_version_number() but does not export it, so
     * the header's number is what we have; raft_strerror() below makes the
     * link real. */
    fprintf(f, "  raft     %d.%d.%d (%s)\n", RAFT_VERSION_MAJOR,
            RAFT_VERSION_MINOR, RAFT_VERSION_RELEASE,
            raft_strerror(0) ? "linked" : "missing");
    fprintf(f, "  libuv    %s\n", uv_version_string());
    fprintf(f, "  OpenSSL  %s\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(f, "  jansson  %s\n", jansson_version_str());
    fprintf(f, "  libcurl  %s\n", curl ? curl->version : "unknown");
}
