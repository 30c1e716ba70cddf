/* Private to the Compose loader (skiff/compose.h): the YAML tree with
 * lines, the notes it collects, and the steps on trees -- parse,
 * interpolate, normalise, merge. lib/compose.c checks keys and types the
 * merged tree.
 *
 * Every node, string and array of a load lives in one arena, released as
 * a whole at the end of the load; nodes are never shared (aliases are
 * expanded into copies), so a step may change a tree in place. */
#ifndef SKIFF_LIB_COMPOSE_TREE_H
#define SKIFF_LIB_COMPOSE_TREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/compose.h"

enum ykind { Y_NULL, Y_SCALAR, Y_SEQ, Y_MAP };

/* Compose's merge tags: `!reset` drops the value from what the earlier
 * files said; `!override` replaces it whole instead of merging. */
enum ytag { YT_NONE, YT_RESET, YT_OVERRIDE };

struct ynode {
    enum ykind kind;
    enum ytag tag;
    bool quoted;          /* a scalar written in quotes (or as a block) */
    const char *file;     /* one of the stack's files */
    int64_t line;         /* 1-based */
    char *text;           /* Y_SCALAR; also a map's keys */
    size_t n;             /* items (Y_SEQ) or pairs (Y_MAP) */
    struct ynode **items; /* Y_SEQ */
    struct ynode **keys;  /* Y_MAP: scalar nodes */
    struct ynode **vals;  /* Y_MAP */
};

struct arena_block;

/* One load's state. */
struct cctx {
    struct sk_stack *st; /* notes go to its warnings and errors */
    const struct sk_compose_host *host;
    struct arena_block *arena;
    size_t n_nodes;
    bool nodes_exceeded;
};

/* ---- memory (the load's arena; aborts when out of memory) ---- */
void *arena_alloc(struct cctx *c, size_t size); /* zeroed */
char *arena_strdup(struct cctx *c, const char *s);
char *arena_strndup(struct cctx *c, const char *s, size_t n);
char *arena_printf(struct cctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_release(struct cctx *c);

/* ---- notes ---- */
/* An error or a warning at file:line (line 0: the whole file). An equal
 * note (same place, same words) is kept once: a node copied by an alias
 * says its problem once. */
void note_error(struct cctx *c, const char *file, int64_t line, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
void note_warn(struct cctx *c, const char *file, int64_t line, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));
/* The same, at a node. */
void node_error(struct cctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void node_warn(struct cctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether s is valid UTF-8 (JSON, and so the API, wants it). */
bool utf8_valid(const char *s);

/* ---- paths in messages ("services.web.ports[1]") ---- */
#define PATH_SIZE 256
/* buf (PATH_SIZE bytes) = path.key (the key cut at 64 bytes), or
 * path[i]; cut to fit. Returns buf. */
const char *path_key(char *buf, const char *path, const char *key);
const char *path_index(char *buf, const char *path, size_t i);

/* ---- trees ---- */
/* Parses one file (its path must outlive the load: one of the stack's
 * files). NULL, with an error noted, when it is not YAML, is empty, holds
 * more than one document, or is too deep or too large
 * (SK_COMPOSE_MAX_DEPTH, SK_COMPOSE_MAX_NODES). */
struct ynode *ytree_parse(struct cctx *c, const char *file, const char *text,
                          size_t len);
/* The value of key in a map node, or NULL (also for a non-map). */
struct ynode *ymap_get(const struct ynode *map, const char *key);
/* Sets key in a map node (replacing its value), or removes it (val
 * NULL). */
void ymap_set(struct cctx *c, struct ynode *map, struct ynode *key,
              struct ynode *val);
/* A new node at the place of `at`. */
struct ynode *ynode_new(struct cctx *c, enum ykind kind,
                        const struct ynode *at);

/* Interpolates every scalar value of the tree (not the keys) from the
 * environment, as skiff/compose.h says; problems are noted at the
 * node, under its path. */
void ytree_interpolate(struct cctx *c, struct ynode *root);
/* One string, for the env_file lines: NULL after noting an error at
 * file:line, else an arena string. `what` prefixes messages. */
char *interpolate_text(struct cctx *c, const char *text, const char *file,
                       int64_t line, const char *what);
/* Rewrites the forms Compose allows two ways into one, so that files merge
 * whatever form each used: a service's environment, labels and
 * deploy.labels as lists ("K=V") become mappings, its networks as a list a
 * mapping, and env_file as one string a list. */
void ytree_normalise(struct cctx *c, struct ynode *root);
/* Merges `over` (a later file) into `base` as Compose does
 * (skiff/compose.h); returns the merged tree, which may reuse both. */
struct ynode *ytree_merge(struct cctx *c, struct ynode *base,
                          struct ynode *over);

/* A port entry's merge key, "published:target/protocol" (ranges kept as
 * written), or NULL if it does not parse (it then merges as itself). Also
 * a mount's target and a secret's or config's target. */
char *port_merge_key(struct cctx *c, const struct ynode *entry);
char *mount_merge_key(struct cctx *c, const struct ynode *entry);
char *fileref_merge_key(struct cctx *c, const struct ynode *entry, bool config);

#endif
