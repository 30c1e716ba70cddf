#include "skiff/join.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skiff/http_client.h"
#include "skiff/mem.h"
#include "skiff/objects.h"
#include "skiff/pki.h"
#include "skiff/wire.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Failures worth retrying: the manager is not reachable or not ready. */
static bool transient(enum sk_rc rc)
{
    return rc == SK_EUNAVAIL || rc == SK_ETIMEDOUT || rc == SK_EIO ||
           rc == SK_ENOTLEADER || rc == SK_ECANCELED;
}

static enum sk_rc fetch_ca(const char *manager, const struct sk_token *tok,
                           char **out_ca, struct sk_err *err)
{
    char *url = sk_printf("https://%s/v1/ca", manager);
    struct sk_http_call call = {
        .url = url,
        .insecure_fetch_ca = true,
        .connect_timeout_ms = 3000,
        .timeout_ms = 5000,
        .max_response_bytes = 64 * 1024,
    };
    enum sk_rc rc = sk_http_call_sync(&call);
    if (rc == SK_OK)
        rc = sk_http_call_api_error(&call, err);
    else
        sk_err_copy(err, &call.err);
    json_t *j = NULL;
    if (rc == SK_OK) {
        j = json_loads(call.resp_body ? call.resp_body : "", 0, NULL);
        const char *ca = json_string_value(json_object_get(j, "ca_cert_pem"));
        unsigned char digest[SK_DIGEST_SIZE];
        if (!ca) {
            rc = sk_err_set(err, SK_EPROTO, "%s gave no CA certificate",
                            manager);
        } else if (sk_pki_cert_digest(ca, digest, err) != SK_OK) {
            rc = sk_err_wrap(err, "CA from %s", manager);
        } else if (memcmp(digest, tok->ca_digest, SK_DIGEST_SIZE) != 0) {
            rc = sk_err_set(err, SK_EAUTH,
                            "the CA presented by %s does not match the join "
                            "token: another cluster, or someone in between",
                            manager);
        } else {
            *out_ca = sk_strdup(ca);
        }
    }
    json_decref(j);
    sk_http_call_reset(&call);
    free(url);
    return rc;
}

static enum sk_rc send_join(const struct sk_join_config *cfg,
                            const char *ca_pem, const char *csr,
                            json_t **out_reply, struct sk_err *err)
{
    /* Borrowed strings: the body is only encoded, never freed. */
    struct sk_join_body body = {
        .token = (char *)cfg->token,
        .csr = (char *)csr,
        .description = cfg->description,
        .api_addr = (char *)cfg->api_addr,
        .raft_addr = (char *)cfg->raft_addr,
    };
    size_t len;
    char *text = sk_wire_encode(&sk_join_body_schema, &body, false, &len);
    char *url = sk_printf("https://%s/v1/join", cfg->manager);
    struct sk_tls_creds tls = {.ca_pem = ca_pem, .expect_role = "manager"};
    struct sk_http_call call = {
        .method = "POST",
        .url = url,
        .body = text,
        .body_len = len,
        .tls = &tls,
        .connect_timeout_ms = 3000,
        .timeout_ms = 15000,
        .max_response_bytes = 256 * 1024,
    };
    enum sk_rc rc = sk_http_call_sync(&call);
    if (rc == SK_OK)
        rc = sk_http_call_api_error(&call, err);
    else
        sk_err_copy(err, &call.err);
    if (rc == SK_OK) {
        *out_reply = json_loads(call.resp_body ? call.resp_body : "", 0, NULL);
        if (!*out_reply)
            rc = sk_err_set(err, SK_EPROTO, "%s: join reply is not JSON",
                            cfg->manager);
    }
    sk_http_call_reset(&call);
    free(text);
    free(url);
    return rc;
}

static enum sk_rc read_reply(const json_t *r, const char *ca_pem,
                             const char *key, struct sk_local_node *out,
                             struct sk_err *err)
{
    const char *id = json_string_value(json_object_get(r, "node_id"));
    const char *cid = json_string_value(json_object_get(r, "cluster_id"));
    const char *role = json_string_value(json_object_get(r, "role"));
    const char *cert = json_string_value(json_object_get(r, "cert_pem"));
    int rr = role ? sk_enum_index(sk_node_role_names, role) : -1;
    if (!id || !sk_id_valid(id) || !cid || !sk_id_valid(cid) || rr < 0 || !cert)
        return sk_err_set(err, SK_EPROTO, "join reply is incomplete");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (sk_pki_verify(ca_pem, cert,
                      (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, role,
                      err) != SK_OK)
        return sk_err_wrap(err, "certificate from the join");
    if (!sk_pki_key_matches(cert, key))
        return sk_err_set(err, SK_EPROTO,
                          "the certificate from the join is not for our key");
    memcpy(out->node_id, id, SK_ID_SIZE);
    memcpy(out->cluster_id, cid, SK_ID_SIZE);
    out->role = rr;
    out->ca_pem = sk_strdup(ca_pem);
    out->cert_pem = sk_strdup(cert);
    out->key_pem = sk_strdup(key);
    const json_t *mgrs = json_object_get(r, "managers");
    size_t n = json_array_size(mgrs);
    char **addrs = n ? sk_calloc(n, sizeof *addrs) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(mgrs, i));
        if (s)
            addrs[k++] = (char *)s;
    }
    sk_local_node_set_managers(out, addrs, k);
    free(addrs);
    if (rr == SK_ROLE_MANAGER) {
        const char *dk = json_string_value(json_object_get(r, "data_key"));
        unsigned char *raw = NULL;
        size_t len = 0;
        if (!dk || !sk_base64_decode(dk, &raw, &len) ||
            len != SK_DATA_KEY_SIZE) {
            free(raw);
            return sk_err_set(err, SK_EPROTO,
                              "joined as a manager but got no data key");
        }
        memcpy(out->data_key, raw, SK_DATA_KEY_SIZE);
        memset(raw, 0, len);
        free(raw);
        out->has_data_key = true;
    }
    return SK_OK;
}

enum sk_rc sk_join_cluster(const struct sk_join_config *cfg,
                           struct sk_local_node *out, struct sk_err *err)
{
    struct sk_token tok;
    enum sk_rc rc = sk_token_parse(cfg->token ? cfg->token : "", &tok, err);
    if (rc != SK_OK)
        return rc;
    uint64_t deadline =
        mono_ms() + (cfg->patience_ms ? cfg->patience_ms : 60000);
    char *ca = NULL;
    for (;;) {
        rc = fetch_ca(cfg->manager, &tok, &ca, err);
        if (rc == SK_OK || !transient(rc) || mono_ms() >= deadline)
            break;
        sleep(1);
    }
    if (rc != SK_OK)
        return rc;

    char *key = NULL, *csr = NULL;
    if ((rc = sk_pki_key_new(&key, err)) != SK_OK ||
        (rc = sk_pki_csr_new(key, cfg->description.hostname, &csr, err)) !=
            SK_OK) {
        free(ca);
        free(key);
        return rc;
    }
    json_t *reply = NULL;
    for (;;) {
        rc = send_join(cfg, ca, csr, &reply, err);
        if (rc == SK_OK || !transient(rc) || mono_ms() >= deadline)
            break;
        sleep(1);
    }
    if (rc == SK_OK)
        rc = read_reply(reply, ca, key, out, err);
    json_decref(reply);
    free(csr);
    memset(key, 0, strlen(key));
    free(key);
    free(ca);
    return rc;
}
