#include "skiff/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skiff/mem.h"

#define MAX_STATE_FILE (1u << 20)

enum sk_rc sk_write_file_atomic(const char *path, const void *data, size_t len,
                                int mode, struct sk_err *err)
{
    char *tmp = sk_printf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        sk_err_set(err, SK_EIO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return SK_EIO;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sk_err_set(err, SK_EIO, "%s: write: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return SK_EIO;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        sk_err_set(err, SK_EIO, "%s: fsync: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return SK_EIO;
    }
    if (rename(tmp, path) != 0) {
        sk_err_set(err, SK_EIO, "%s: rename: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return SK_EIO;
    }
    free(tmp);
    return SK_OK;
}

enum sk_rc sk_read_file(const char *path, size_t max, char **out,
                        size_t *out_len, struct sk_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return sk_err_set(err, SK_ENOTFOUND, "%s: no such file", path);
        return sk_err_set(err, SK_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 4096, len = 0;
    char *buf = sk_malloc(cap + 1);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len > max) {
            fclose(f);
            free(buf);
            return sk_err_set(err, SK_ETOOBIG, "%s: larger than %zu bytes",
                              path, max);
        }
        if (len == cap) {
            cap *= 2;
            buf = sk_realloc(buf, cap + 1);
        }
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return sk_err_set(err, SK_EIO, "%s: read error", path);
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    return SK_OK;
}

enum sk_rc sk_mkdirs(const char *path, int mode, struct sk_err *err)
{
    char *copy = sk_strdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, (mode_t)mode) != 0 && errno != EEXIST) {
            sk_err_set(err, SK_EIO, "%s: %s", copy, strerror(errno));
            free(copy);
            return SK_EIO;
        }
        *p = '/';
    }
    free(copy);
    if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST)
        return sk_err_set(err, SK_EIO, "%s: %s", path, strerror(errno));
    return SK_OK;
}

enum sk_rc sk_remove_tree(const char *path, struct sk_err *err)
{
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return SK_OK;
        return sk_err_set(err, SK_EIO, "%s: %s", path, strerror(errno));
    }
    struct dirent *e;
    enum sk_rc rc = SK_OK;
    while (rc == SK_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *child = sk_printf("%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
            rc = sk_remove_tree(child, err);
        else if (unlink(child) != 0)
            rc = sk_err_set(err, SK_EIO, "%s: %s", child, strerror(errno));
        free(child);
    }
    closedir(d);
    if (rc == SK_OK && rmdir(path) != 0)
        rc = sk_err_set(err, SK_EIO, "%s: %s", path, strerror(errno));
    return rc;
}

static char *dup_field(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? sk_strdup(s) : NULL;
}

static void load_strings(const json_t *arr, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v)) {
            *out = sk_realloc(*out, (*n + 1) * sizeof **out);
            (*out)[(*n)++] = sk_strdup(json_string_value(v));
        }
    }
}

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

static json_t *strings_json(char *const *s, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(s[i]));
    return arr;
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

enum sk_rc sk_local_node_load(const char *dir, struct sk_local_node *out,
                              struct sk_err *err)
{
    char *path = sk_printf("%s/node.json", dir);
    char *text;
    size_t len;
    enum sk_rc rc = sk_read_file(path, MAX_STATE_FILE, &text, &len, err);
    if (rc != SK_OK) {
        free(path);
        return rc;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    wipe_free(text);
    if (!j) {
        sk_err_set(err, SK_EINVAL, "%s: not JSON: %s", path, jerr.text);
        free(path);
        return SK_EINVAL;
    }
    memset(out, 0, sizeof *out);
    const char *id = json_string_value(json_object_get(j, "node_id"));
    const char *cid = json_string_value(json_object_get(j, "cluster_id"));
    const char *role = json_string_value(json_object_get(j, "role"));
    if (!id || !sk_id_valid(id) || !cid || !sk_id_valid(cid) || !role ||
        (strcmp(role, "worker") != 0 && strcmp(role, "manager") != 0)) {
        json_decref(j);
        sk_err_set(err, SK_EINVAL,
                   "%s: node_id, cluster_id or role missing or malformed",
                   path);
        free(path);
        return SK_EINVAL;
    }
    memcpy(out->node_id, id, SK_ID_SIZE);
    memcpy(out->cluster_id, cid, SK_ID_SIZE);
    out->role = strcmp(role, "manager") == 0 ? 1 : 0;
    out->hostname = dup_field(j, "hostname");
    out->advertise_addr = dup_field(j, "advertise_addr");
    out->data_addr = dup_field(j, "data_addr");
    out->listen_addr = dup_field(j, "listen_addr");
    out->docker_socket = dup_field(j, "docker_socket");
    out->api_port = (int)json_integer_value(json_object_get(j, "api_port"));
    out->raft_port = (int)json_integer_value(json_object_get(j, "raft_port"));
    load_strings(json_object_get(j, "managers"), &out->managers,
                 &out->n_managers);
    out->ca_pem = dup_field(j, "ca_pem");
    out->cert_pem = dup_field(j, "cert_pem");
    out->key_pem = dup_field(j, "key_pem");
    const char *dk = json_string_value(json_object_get(j, "data_key"));
    if (dk) {
        unsigned char *raw = NULL;
        size_t n = 0;
        if (!sk_base64_decode(dk, &raw, &n) || n != SK_DATA_KEY_SIZE) {
            free(raw);
            json_decref(j);
            sk_local_node_free(out);
            sk_err_set(err, SK_EINVAL, "%s: malformed data key", path);
            free(path);
            return SK_EINVAL;
        }
        memcpy(out->data_key, raw, SK_DATA_KEY_SIZE);
        memset(raw, 0, n);
        free(raw);
        out->has_data_key = true;
    }
    json_decref(j);
    if (!out->ca_pem || !out->cert_pem || !out->key_pem ||
        !out->advertise_addr) {
        sk_local_node_free(out);
        sk_err_set(err, SK_EINVAL, "%s: credentials or addresses missing",
                   path);
        free(path);
        return SK_EINVAL;
    }
    free(path);
    return SK_OK;
}

enum sk_rc sk_local_node_save(const char *dir, const struct sk_local_node *st,
                              struct sk_err *err)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:i, s:s?, s:o, s:s, "
        "s:s, s:s}",
        "node_id", st->node_id, "cluster_id", st->cluster_id, "role",
        st->role ? "manager" : "worker", "hostname", st->hostname,
        "advertise_addr", st->advertise_addr, "data_addr", st->data_addr,
        "listen_addr", st->listen_addr, "api_port", st->api_port, "raft_port",
        st->raft_port, "docker_socket", st->docker_socket, "managers",
        strings_json(st->managers, st->n_managers), "ca_pem", st->ca_pem,
        "cert_pem", st->cert_pem, "key_pem", st->key_pem);
    if (!j)
        return sk_err_set(err, SK_EINVAL, "node state is incomplete");
    if (st->has_data_key) {
        char *dk = sk_base64_encode(st->data_key, SK_DATA_KEY_SIZE);
        json_object_set_new(j, "data_key", json_string(dk));
        wipe_free(dk);
    }
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    char *path = sk_printf("%s/node.json", dir);
    enum sk_rc rc = sk_write_file_atomic(path, text, strlen(text), 0600, err);
    wipe_free(text);
    free(path);
    return rc;
}

void sk_local_node_free(struct sk_local_node *st)
{
    free(st->hostname);
    free(st->advertise_addr);
    free(st->data_addr);
    free(st->listen_addr);
    free(st->docker_socket);
    free_strings(st->managers, st->n_managers);
    free(st->ca_pem);
    free(st->cert_pem);
    wipe_free(st->key_pem);
    memset(st, 0, sizeof *st);
}

void sk_local_node_set_managers(struct sk_local_node *st, char *const *addrs,
                                size_t n)
{
    char **copy = n ? sk_calloc(n, sizeof *copy) : NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = sk_strdup(addrs[i]);
    free_strings(st->managers, st->n_managers);
    st->managers = copy;
    st->n_managers = n;
}

enum sk_rc sk_admin_creds_load(const char *path, struct sk_admin_creds *out,
                               struct sk_err *err)
{
    char *text;
    size_t len;
    enum sk_rc rc = sk_read_file(path, MAX_STATE_FILE, &text, &len, err);
    if (rc != SK_OK)
        return rc;
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    wipe_free(text);
    if (!j)
        return sk_err_set(err, SK_EINVAL, "%s: not JSON: %s", path, jerr.text);
    memset(out, 0, sizeof *out);
    out->cluster_id = dup_field(j, "cluster_id");
    out->ca_pem = dup_field(j, "ca_pem");
    out->cert_pem = dup_field(j, "cert_pem");
    out->key_pem = dup_field(j, "key_pem");
    load_strings(json_object_get(j, "managers"), &out->managers,
                 &out->n_managers);
    json_decref(j);
    if (!out->ca_pem || !out->cert_pem || !out->key_pem ||
        out->n_managers == 0) {
        sk_admin_creds_free(out);
        return sk_err_set(err, SK_EINVAL,
                          "%s: needs ca_pem, cert_pem, key_pem and managers",
                          path);
    }
    return SK_OK;
}

enum sk_rc sk_admin_creds_save(const char *path, const struct sk_admin_creds *c,
                               struct sk_err *err)
{
    json_t *j = json_pack("{s:s?, s:s, s:s, s:s, s:o}", "cluster_id",
                          c->cluster_id, "ca_pem", c->ca_pem, "cert_pem",
                          c->cert_pem, "key_pem", c->key_pem, "managers",
                          strings_json(c->managers, c->n_managers));
    if (!j)
        return sk_err_set(err, SK_EINVAL, "admin credentials incomplete");
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    enum sk_rc rc = sk_write_file_atomic(path, text, strlen(text), 0600, err);
    wipe_free(text);
    return rc;
}

void sk_admin_creds_free(struct sk_admin_creds *c)
{
    free(c->cluster_id);
    free(c->ca_pem);
    free(c->cert_pem);
    wipe_free(c->key_pem);
    free_strings(c->managers, c->n_managers);
    memset(c, 0, sizeof *c);
}
