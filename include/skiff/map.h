/* A hash map from strings to pointers (chained, power-of-two buckets).
 *
 * The map owns copies of its keys, never the values. Iteration order is
 * unspecified. Removing the entry the iterator stands on is allowed;
 * other changes during iteration are not. */
#ifndef SKIFF_MAP_H
#define SKIFF_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct sk_map_entry {
    char *key;
    void *value;
    struct sk_map_entry *next;
};

struct sk_map {
    struct sk_map_entry **buckets;
    size_t n_buckets; /* 0 or a power of two */
    size_t count;
};

struct sk_map_iter {
    const struct sk_map *map;
    size_t bucket;
    struct sk_map_entry *entry, *next;
};

void sk_map_init(struct sk_map *m);
/* Frees the map's keys and buckets (not the values). */
void sk_map_clear(struct sk_map *m);
void *sk_map_get(const struct sk_map *m, const char *key);
/* Sets key to value; returns the value it replaces, or NULL. */
void *sk_map_put(struct sk_map *m, const char *key, void *value);
/* Removes key; returns its value, or NULL if absent. */
void *sk_map_del(struct sk_map *m, const char *key);
size_t sk_map_count(const struct sk_map *m);

void sk_map_iter_init(struct sk_map_iter *it, const struct sk_map *m);
/* Advances; returns false at the end. */
bool sk_map_iter_next(struct sk_map_iter *it, const char **out_key,
                      void **out_value);

#endif
