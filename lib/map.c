#include "skiff/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

/* FNV-1a: short keys (IDs, names), no adversary can pick colliding keys
 * cheaply enough to matter at our sizes, and it is deterministic. */
static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void sk_map_init(struct sk_map *m)
{
    m->buckets = NULL;
    m->n_buckets = 0;
    m->count = 0;
}

void sk_map_clear(struct sk_map *m)
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct sk_map_entry *e = m->buckets[i];
        while (e) {
            struct sk_map_entry *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    sk_map_init(m);
}

static struct sk_map_entry **slot(const struct sk_map *m, const char *key)
{
    struct sk_map_entry **p = &m->buckets[hash(key) & (m->n_buckets - 1)];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

void *sk_map_get(const struct sk_map *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    struct sk_map_entry *e = *slot(m, key);
    return e ? e->value : NULL;
}

static void grow(struct sk_map *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 16;
    struct sk_map_entry **b = sk_calloc(n, sizeof *b);
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct sk_map_entry *e = m->buckets[i];
        while (e) {
            struct sk_map_entry *next = e->next;
            size_t k = hash(e->key) & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

void *sk_map_put(struct sk_map *m, const char *key, void *value)
{
    if (m->count + 1 > m->n_buckets)
        grow(m);
    struct sk_map_entry **p = slot(m, key);
    if (*p) {
        void *old = (*p)->value;
        (*p)->value = value;
        return old;
    }
    struct sk_map_entry *e = sk_malloc(sizeof *e);
    e->key = sk_strdup(key);
    e->value = value;
    e->next = NULL;
    *p = e;
    m->count++;
    return NULL;
}

void *sk_map_del(struct sk_map *m, const char *key)
{
    if (m->count == 0)
        return NULL;
    struct sk_map_entry **p = slot(m, key);
    struct sk_map_entry *e = *p;
    if (!e)
        return NULL;
    void *value = e->value;
    *p = e->next;
    free(e->key);
    free(e);
    m->count--;
    return value;
}

size_t sk_map_count(const struct sk_map *m)
{
    return m->count;
}

void sk_map_iter_init(struct sk_map_iter *it, const struct sk_map *m)
{
    it->map = m;
    it->bucket = 0;
    it->entry = NULL;
    it->next = m->n_buckets ? m->buckets[0] : NULL;
}

bool sk_map_iter_next(struct sk_map_iter *it, const char **out_key,
                      void **out_value)
{
    /* `next` is read before the caller sees `entry`, so the caller may
     * delete the entry it was given. */
    while (!it->next) {
        if (++it->bucket >= it->map->n_buckets)
            return false;
        it->next = it->map->buckets[it->bucket];
    }
    it->entry = it->next;
    it->next = it->entry->next;
    if (out_key)
        *out_key = it->entry->key;
    if (out_value)
        *out_value = it->entry->value;
    return true;
}
