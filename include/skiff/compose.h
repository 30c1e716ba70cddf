/* The Compose file loader behind `skiff stack deploy`: one or more Compose
 * files (the part of the Compose specification `docker stack deploy`
 * honours) in, a stack out -- its services as skiff service specs ready
 * to send, its networks, secrets, configs and volumes -- or the reasons
 * it cannot be, each with file and line.
 *
 * What it does, in order:
 *  1. parses each file with libyaml into a tree of nodes that remember
 *     their file and line (anchors and aliases expanded, `<<` merge keys
 *     applied, a key given twice refused);
 *  2. checks every key of each file against the keys of the Compose
 *     specification: a key skiff honours is read; a Compose key skiff does
 *     not honour (build, depends_on, ...) is a warning naming file:line,
 *     one per occurrence; a key that is not Compose at all (a typo) is an
 *     error. Keys starting with "x-" are extensions and are ignored, as
 *     Compose does;
 *  3. interpolates every scalar value from the environment: $VAR, ${VAR},
 *     ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error},
 *     ${VAR:+alt}, ${VAR+alt}, and $$ for a literal $. An unset variable
 *     without a default is a warning (it reads as empty); ${VAR:?msg} with
 *     VAR unset or empty is an error with file:line and msg;
 *  4. merges the files in order, as Compose does: mappings merge key by
 *     key (a later scalar wins); command, entrypoint and healthcheck.test
 *     are replaced whole; ports, volumes, secrets and configs merge by
 *     their unique key (a port's published, target and protocol; a mount's
 *     target; a secret's or config's target), a later entry replacing an
 *     earlier one; environment, labels and a service's networks merge as
 *     mappings whether written as lists or mappings; other sequences are
 *     appended, without repeating an equal entry;
 *  5. types the result: every value checked (numbers and their ranges,
 *     durations, sizes, enum names, port and volume syntax), every
 *     reference resolved (a service's networks, named volumes, secrets and
 *     configs must be defined at the top level), files read (env_file, a
 *     secret's or config's `file:`, within SK_MAX_SECRET_BYTES and
 *     SK_MAX_CONFIG_BYTES), and each service spec checked as a manager
 *     would (sk_service_spec_validate and the schema's caps). No published
 *     port may be given twice in the stack.
 *
 * Names in the cluster: STACK_KEY for services, and for networks, secrets,
 * configs and volumes unless the file gives `name:` (used as is) or marks
 * them `external:` (their own name, never created). Everything the stack
 * makes is labelled SK_STACK_LABEL=STACK (services' containers too). A
 * service that names no network joins STACK_default (an overlay made for
 * it, unless the file defines a network "default"). On every network a
 * service is known by its name in the file too (an alias), so services
 * find each other as they do under Compose.
 *
 * Ports publish in host mode, as skiff's `service create -p` does (there
 * is no routing mesh yet); a port bound to one host address
 * (127.0.0.1:8080:80) is refused rather than published on every address.
 *
 * Pure: no I/O but through the host callbacks, which the caller provides
 * (the CLI's read the environment and the file system; tests and the fuzz
 * target use fixed ones). */
#ifndef SKIFF_COMPOSE_H
#define SKIFF_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/objects.h"

/* The label on everything a stack makes; its value is the stack's name. */
#define SK_STACK_LABEL "skiff.stack.namespace"

/* Caps on what one load reads. */
#define SK_COMPOSE_MAX_FILE_BYTES (4 * 1024 * 1024)
#define SK_COMPOSE_MAX_NODES 200000 /* YAML nodes, aliases expanded */
#define SK_COMPOSE_MAX_DEPTH 64
#define SK_COMPOSE_MAX_ERRORS 100

/* A Compose file's text, as the caller read it. */
struct sk_compose_file {
    const char *path; /* for messages, and the base of relative paths */
    const char *text;
    size_t len;
};

/* How the loader reaches the outside world. */
struct sk_compose_host {
    /* The value of an environment variable, or NULL when it is unset. */
    const char *(*getenv)(void *ctx, const char *name);
    /* Reads a whole file of at most max bytes into *out_data (heap, NUL
     * appended, the caller frees) and *out_len. On failure returns
     * SK_ENOTFOUND (no such file), SK_ETOOBIG (larger than max) or another
     * code, with err saying why. */
    enum sk_rc (*read_file)(void *ctx, const char *path, size_t max,
                            char **out_data, size_t *out_len,
                            struct sk_err *err);
    void *ctx;
    /* Relative paths (env_file, file:, bind mounts' sources) start here:
     * the directory of the first file, as Compose has it. Absolute, so
     * that bind sources are. */
    const char *project_dir;
};

/* A warning or an error, where it was found. */
struct sk_compose_note {
    const char *file; /* one of the stack's files */
    int64_t line;     /* 1-based; 0: the file as a whole */
    char *msg;        /* "services.web.build: ..." */
};

enum sk_mount_type { SK_MOUNT_BIND, SK_MOUNT_VOLUME, SK_MOUNT_TMPFS };
extern const char *const sk_mount_type_names[];

/* A service's mount (`volumes:`), as the service spec will carry it once
 * skiff has mounts (their issue comes next; until then `stack deploy`
 * refuses a stack that has any). */
struct sk_stack_mount {
    int type;     /* enum sk_mount_type */
    char *source; /* bind: an absolute host path; volume: the volume's
                     cluster name, NULL for an anonymous volume; tmpfs:
                     NULL */
    char *target; /* an absolute path in the container */
    bool read_only;
    bool nocopy;        /* volume: do not copy the image's files in */
    int64_t tmpfs_size; /* bytes; 0: the kernel's default */
    int64_t tmpfs_mode; /* 0: the kernel's default (01777) */
    const char *file;   /* where it was written (the stack's) */
    int64_t line;
};

struct sk_stack_service {
    char *key; /* its name in the file */
    /* Ready to send: name STACK_KEY, labelled, networks by their cluster
     * names (IDs unresolved), secrets and configs by their cluster names,
     * checked by sk_service_spec_validate. */
    struct sk_service_spec spec;
    struct sk_stack_mount *mounts;
    size_t n_mounts;
    /* security_opt as written; skiff's containers always run with
     * no-new-privileges. Not in the service spec yet. */
    char **security_opt;
    size_t n_security_opt;
    const char *file;
    int64_t line;
};

struct sk_stack_network {
    char *key;
    bool external;               /* exists already; never made or removed */
    struct sk_network_spec spec; /* spec.name: its cluster name */
    const char *file;
    int64_t line;
};

/* A secret or a config. */
struct sk_stack_blob {
    char *key;
    bool external;
    /* name: the cluster name; labels; data: base64 of the content (NULL
     * when external). */
    struct sk_secret_spec spec;
    int64_t size; /* bytes of the content */
    char *source; /* where the content came from: a path, "environment
                     VAR" or "content" */
    const char *file;
    int64_t line;
};

struct sk_stack_volume {
    char *key;
    char *name; /* cluster name */
    bool external;
    char *driver; /* "local" unless given */
    struct sk_kv *driver_opts;
    size_t n_driver_opts;
    struct sk_kv *labels;
    size_t n_labels;
    const char *file;
    int64_t line;
};

struct sk_stack {
    char *name;
    /* In the order of the files. Networks: only those some service uses
     * (an unused one is a warning), with STACK_default if needed. Secrets
     * and configs: every one defined. */
    struct sk_stack_service *services;
    size_t n_services;
    struct sk_stack_network *networks;
    size_t n_networks;
    struct sk_stack_blob *secrets;
    size_t n_secrets;
    struct sk_stack_blob *configs;
    size_t n_configs;
    struct sk_stack_volume *volumes;
    size_t n_volumes;
    struct sk_compose_note *warnings;
    size_t n_warnings;
    /* Non-empty: the stack is not usable (its lists may be partial). At
     * most SK_COMPOSE_MAX_ERRORS, then one saying more were left out. */
    struct sk_compose_note *errors;
    size_t n_errors;
    char **files; /* the paths the notes point into */
    size_t n_files;
};

/* Loads a stack named `name` from files[0..n) merged in order. Never
 * returns NULL; the caller checks n_errors and frees the stack. The name
 * must be a valid object name (sk_name_validate) or the stack has an error
 * saying so. */
struct sk_stack *sk_compose_load(const char *name,
                                 const struct sk_compose_file *files,
                                 size_t n_files,
                                 const struct sk_compose_host *host);
void sk_stack_free(struct sk_stack *stack);

/* A note as one line: "FILE:LINE: MSG" (or "FILE: MSG"), into buf. */
void sk_compose_note_format(const struct sk_compose_note *note, char *buf,
                            size_t size);

/* Splits a command line into words as Compose does for a `command:` or
 * `entrypoint:` given as a string: on blanks, with '...' literal, "..."
 * honouring \" \\ \$ and \`, and \ escaping a character outside quotes.
 * On success *out_words is a heap array of heap strings (free each, then
 * it). Fails (SK_EINVAL) on an unterminated quote or a trailing \. */
enum sk_rc sk_compose_split_words(const char *line, char ***out_words,
                                  size_t *out_n, struct sk_err *err);

#endif
