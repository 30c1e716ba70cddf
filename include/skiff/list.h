/* An intrusive, circular, doubly linked list, as in the Linux kernel and
 * libuv's queue.h: a struct joins a list through a `struct sk_list` member;
 * the list itself is a `struct sk_list` head, empty when it points at
 * itself. Insertion and removal are O(1) and never allocate.
 *
 *     struct conn { ...; struct sk_list link; };
 *     struct sk_list conns;             sk_list_init(&conns);
 *     sk_list_insert_head(&conns, &c->link);
 *     struct sk_list *it, *next;
 *     sk_list_each_safe(it, next, &conns) {
 *         struct conn *c = sk_list_entry(it, struct conn, link);
 *         ... may sk_list_remove(&c->link) ...
 *     }
 *
 * A removed item points at itself, so removing it again does nothing. */
#ifndef SKIFF_LIST_H
#define SKIFF_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct sk_list {
    struct sk_list *prev, *next;
};

/* A head, or an item not in any list. */
static inline void sk_list_init(struct sk_list *l)
{
    l->prev = l->next = l;
}

static inline bool sk_list_empty(const struct sk_list *head)
{
    return head->next == head;
}

/* Puts item first in the list. */
static inline void sk_list_insert_head(struct sk_list *head,
                                       struct sk_list *item)
{
    item->next = head->next;
    item->prev = head;
    head->next->prev = item;
    head->next = item;
}

/* Takes item out of its list (if any) and leaves it pointing at itself. */
static inline void sk_list_remove(struct sk_list *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    sk_list_init(item);
}

/* The struct of `type` whose `member` is at ptr. */
#define sk_list_entry(ptr, type, member)                                       \
    ((type *)((char *)(ptr)-offsetof(type, member)))

/* The first item's struct, or NULL when the list is empty. */
#define sk_list_first(head, type, member)                                      \
    (sk_list_empty(head) ? NULL : sk_list_entry((head)->next, type, member))

/* Visits every item, first to last; `it` must stay in the list. */
#define sk_list_each(it, head)                                                 \
    for ((it) = (head)->next; (it) != (head); (it) = (it)->next)

/* The same, but `it` may be removed (or freed) during the visit. */
#define sk_list_each_safe(it, next_, head)                                     \
    for ((it) = (head)->next, (next_) = (it)->next; (it) != (head);            \
         (it) = (next_), (next_) = (it)->next)

#endif
