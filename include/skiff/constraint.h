/* Placement constraints and preferences, as users write them:
 *
 *   node.id==ID   node.hostname!=h3   node.role==manager   node.ip==10.77.0.12
 *   node.labels.zone==eu
 *   spread=node.labels.zone     (a placement preference)
 *
 * Parse once (sk_constraint_parse, or a whole placement with
 * sk_placement_rules_parse), then match against nodes. Pure. */
#ifndef SKIFF_CONSTRAINT_H
#define SKIFF_CONSTRAINT_H

#include <stdbool.h>
#include <stddef.h>

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

/* A service's placement, parsed: what the scheduler and the orchestrator
 * use. The store keeps one beside every service, parsed when the service
 * is written (sk_store_placement). */
struct sk_placement_rules {
    struct sk_constraint *constraints;
    size_t n_constraints;
    char (*spread)[128]; /* the label key of each preference */
    size_t n_spread;
    bool bad_constraint; /* one did not parse: no node is eligible */
};

/* Parses every constraint and preference of p into out (which the caller
 * frees with sk_placement_rules_free, also on error). On error -- the
 * first expression that does not parse, as sk_constraint_parse and
 * sk_preference_parse say -- out is still filled: a bad constraint sets
 * bad_constraint, a bad preference leaves its key empty. */
enum sk_rc sk_placement_rules_parse(const struct sk_placement *p,
                                    struct sk_placement_rules *out,
                                    struct sk_err *err);
void sk_placement_rules_free(struct sk_placement_rules *r);

/* Whether node n may hold tasks of a service with these rules (NULL: no
 * rules): not drained, and matching every constraint. *out_for_new says
 * whether new tasks may start there now: also ready and active. */
bool sk_node_eligible(const struct sk_node *n,
                      const struct sk_placement_rules *r, bool *out_for_new);

#endif
