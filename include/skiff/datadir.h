/* What a node keeps in its data directory, and the admin credentials file.
 *
 * DIR/node.json (mode 0600) holds the node's membership: its ID, cluster,
 * role, addresses, the managers to talk to, the cluster CA, its certificate
 * and key, and -- managers only -- the cluster data key. It is replaced
 * atomically (write, fsync, rename), so a crash leaves the old or the new
 * file, never half of one. DIR/raft/ holds a manager's Raft log.
 * DIR/init.json holds the first change of a new cluster until it is
 * committed.
 *
 * The admin credentials file (`--init` writes DIR/admin.json; `skiff`
 * reads it) holds the CA, an admin client certificate and key, and the
 * managers' API addresses. */
#ifndef SKIFF_DATADIR_H
#define SKIFF_DATADIR_H

#include <stdbool.h>
#include <stddef.h>

#include "skiff/err.h"
#include "skiff/id.h"
#include "skiff/pki.h"

struct sk_local_node {
    char node_id[SK_ID_SIZE];
    char cluster_id[SK_ID_SIZE];
    int role; /* enum sk_node_role: the role of the current certificate */
    char *hostname;
    char *advertise_addr;
    char *data_addr;
    char *listen_addr;
    int api_port;
    int raft_port;
    char *docker_socket; /* the node's dockerd, as given at first start */
    char **managers;     /* API "ip:port"s */
    size_t n_managers;
    char *ca_pem;
    char *cert_pem;
    char *key_pem;
    bool has_data_key;
    unsigned char data_key[SK_DATA_KEY_SIZE];
};

/* Loads DIR/node.json. SK_ENOTFOUND if the node has no membership yet;
 * other errors name the file and the problem. */
enum sk_rc sk_local_node_load(const char *dir, struct sk_local_node *out,
                              struct sk_err *err);
enum sk_rc sk_local_node_save(const char *dir, const struct sk_local_node *st,
                              struct sk_err *err);
void sk_local_node_free(struct sk_local_node *st);
/* Replaces the managers list (copies). */
void sk_local_node_set_managers(struct sk_local_node *st, char *const *addrs,
                                size_t n);

struct sk_admin_creds {
    char *cluster_id;
    char *ca_pem;
    char *cert_pem;
    char *key_pem;
    char **managers;
    size_t n_managers;
};

enum sk_rc sk_admin_creds_load(const char *path, struct sk_admin_creds *out,
                               struct sk_err *err);
enum sk_rc sk_admin_creds_save(const char *path, const struct sk_admin_creds *c,
                               struct sk_err *err);
void sk_admin_creds_free(struct sk_admin_creds *c);

/* Writes data to path atomically with the given mode. */
enum sk_rc sk_write_file_atomic(const char *path, const void *data, size_t len,
                                int mode, struct sk_err *err);
/* Reads a whole file (at most max bytes) into a NUL-terminated heap
 * buffer. SK_ENOTFOUND if it does not exist. */
enum sk_rc sk_read_file(const char *path, size_t max, char **out,
                        size_t *out_len, struct sk_err *err);
/* mkdir -p with mode. */
enum sk_rc sk_mkdirs(const char *path, int mode, struct sk_err *err);
/* rm -rf of a directory we own (the Raft directory on demotion). */
enum sk_rc sk_remove_tree(const char *path, struct sk_err *err);

#endif
