/* Placement constraints and preferences, as users write them:
 *
 *   node.id==ID   node.hostname!=h3   node.role==manager   node.ip==10.77.0.12
 *   node.labels.zone==eu
 *   spread=node.labels.zone     (a placement preference)
 *
 * Parse once (sk_constraint_parse), then match against nodes. Pure. */
#ifndef SKIFF_CONSTRAINT_H
#define SKIFF_CONSTRAINT_H

#include <stdbool.h>

#include "skiff/err.h"
#include "skiff/objects.h"

enum sk_constraint_key {
    SK_CKEY_ID,
    SK_CKEY_HOSTNAME,
    SK_CKEY_ROLE,
    SK_CKEY_IP,
    SK_CKEY_LABEL,
};

struct sk_constraint {
    enum sk_constraint_key key;
    char label[128]; /* SK_CKEY_LABEL: the label's key */
    bool equal;      /* == (true) or != */
    char value[256];
};

/* Errors (SK_EINVAL) quote the expression and say what is wrong:
 *   `constraint "node.labels.zone=eu": want KEY==VALUE or KEY!=VALUE`
 *   `constraint "node.cpu==2": unknown key node.cpu (use node.id,
 *    node.hostname, node.role, node.ip or node.labels.KEY)`. */
enum sk_rc sk_constraint_parse(const char *expr, struct sk_constraint *out,
                               struct sk_err *err);
bool sk_constraint_match(const struct sk_constraint *c,
                         const struct sk_node *n);

/* "spread=node.labels.KEY": fills label_key (the KEY). */
enum sk_rc sk_preference_parse(const char *expr, char *label_key, size_t size,
                               struct sk_err *err);

#endif
