/* Private to agent/: this node's data plane -- its overlay networks, their
 * Docker networks, the DNS responder and the services' virtual IPs, kept
 * to match what the leader says (the session's "networks" messages) and
 * what runs here (the executor's tasks).
 *
 * It holds the node's last network view (skiff/wire.h, struct sk_net_info:
 * every network with a local task, its peers and its services) and the
 * local tasks' addresses and containers. Whenever either changes it
 *   (a) reconciles the overlay through netlink (agent/overlay.h): per
 *       network a bridge with the gateway and the node's own address, a
 *       VXLAN device on the data-path address, static FDB and neighbour
 *       entries for every address behind every peer (the MAC derived from
 *       the address, sk_overlay_mac_of), MTU = the data interface's - 50;
 *   (b) makes dockerd's networks match: one Docker network of driver
 *       bridge on each network's bridge, named "skiff-" + the network's
 *       name and labelled skiff.network.id=ID (so a restarted agent adopts
 *       its networks and removes stale ones), Internal for internal
 *       networks. A network that leaves the view loses its Docker network
 *       first, its devices only then (see agent/overlay.h why);
 *   (c) rebuilds the DNS table (agent/dns_table.h: the view's services on
 *       each network; the local tasks' addresses, so the asker is known)
 *       and listens on each network's gateway, port 53;
 *   (d) keeps the VIP rules (agent/vip.h) of every local running container
 *       on a network with services in vip mode: their running tasks as
 *       backends, applied again when those change. The container's network
 *       namespace is its NetworkSettings.SandboxKey, which dockerd makes at
 *       start: the executor says when a container started, and the rules
 *       follow within a docker inspect (a connection the container opens
 *       before that, in its first milliseconds, misses the VIP);
 *   (e) keeps the host's own rules (one table "ip skiff_host" in the
 *       host's namespace): traffic inside a network's subnet is not
 *       tracked by conntrack (containers' packets to each other cross the
 *       host's netfilter on the bridge, br_netfilter; Swarm's overlay
 *       bridge sits in a namespace of its own and pays nothing there), and
 *       for internal networks what containers send to the host's own
 *       addresses is dropped, but DNS to the gateway: Docker's --internal
 *       stops only forwarded traffic, and containers would still reach
 *       every address of their own host.
 * Nothing is changed before the leader sent the view once and dockerd
 * answered a network list once: before that nothing can be told stale (a
 * restarted agent adopts what it finds), and a node without dockerd runs
 * no container that needs a network.
 *
 * Changes are applied from the loop (a zero timer gathers a burst into one
 * pass), never inside the call that made them; what fails is retried every
 * second. The executor asks dataplane_network() whether a network is ready
 * for a container here, and is told through changed_cb (from the loop)
 * when readiness may have changed. All on the loop thread. */
#ifndef SKIFF_AGENT_DATAPLANE_H
#define SKIFF_AGENT_DATAPLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/netlink.h"
#include "agent/vip.h"
#include "skiff/docker.h"
#include "skiff/err.h"
#include "skiff/objects.h"
#include "skiff/wire.h"

#define DATAPLANE_LABEL "skiff.network.id"
#define DATAPLANE_NAME_PREFIX "skiff-"
#define DATAPLANE_HOST_TABLE "skiff_host"
/* The namespace the host rules go to: the agent's own. */
#define DATAPLANE_HOST_NETNS "/proc/self/ns/net"

/* What tests put in place of the kernel; NULL members: the real one. */
struct dataplane_seams {
    const struct sk_netlink_ops *netlink;
    void *netlink_impl;
    const struct sk_vip_ops *vip; /* also runs the host rules */
    void *vip_impl;
    unsigned mtu;      /* the overlay's MTU; 0: read from the kernel */
    uint16_t dns_port; /* 0: 53 */
};

struct dataplane_config {
    uv_loop_t *loop;
    struct sk_docker *docker; /* borrowed; outlives the data plane */
    const char *node_name;    /* for messages */
    const char *data_addr;    /* this node's data-path address (IPv4) */
    const struct dataplane_seams *seams; /* NULL: the real kernel */
    /* Readiness of networks may have changed: look again. From the loop. */
    void (*changed_cb)(void *ctx);
    void *ctx;
};

struct dataplane;

/* SK_EINVAL for a data address that is not IPv4; the real netlink socket's
 * error if it cannot be opened. Nothing is changed yet. */
struct dataplane *dataplane_new(const struct dataplane_config *cfg,
                                struct sk_err *err);
/* Closes the DNS server and the timers and frees everything once its
 * dockerd calls are done; the kernel and dockerd are left as they are
 * (containers keep their network). cb runs then, from the loop. */
void dataplane_close(struct dataplane *dp, void (*cb)(void *ctx), void *ctx);

/* A "networks" message: the whole view, taken over (msg->networks is
 * moved out and left empty; the caller still frees msg). */
void dataplane_set_view(struct dataplane *dp, struct sk_session_msg *msg);

/* A local task: its addresses (copied), and its container while it runs
 * (NULL otherwise). Call again whenever either changes; the same values
 * again change nothing. */
void dataplane_task(struct dataplane *dp, const char *task_id,
                    const struct sk_net_attachment *networks, size_t n,
                    const char *running_container);
/* The task is gone from this node. */
void dataplane_task_forget(struct dataplane *dp, const char *task_id);

/* Where a container joins a network here. */
struct dataplane_net {
    const char *docker_name; /* the Docker network ("skiff-back") */
    const char *gateway;     /* its gateway, the container's DNS server */
};

/* SK_OK and *out (borrowed until the next change) when the network's
 * bridge and Docker network exist here; SK_EUNAVAIL while they are being
 * made or retried, with err saying why (the last failure, naming the
 * network and the node); SK_ENOTFOUND if the node's view lacks it. */
enum sk_rc dataplane_network(const struct dataplane *dp, const char *network_id,
                             struct dataplane_net *out, struct sk_err *err);

/* A network as the host rules see it. Borrowed. */
struct dataplane_host_net {
    const char *bridge;  /* "skb..." */
    const char *subnet;  /* "10.0.1.0/24" */
    const char *gateway; /* "10.0.1.1" */
    bool internal;
};

/* The host rules for these networks (pure): the nft script that makes
 * table ip skiff_host exactly that (no network: the table is removed).
 * The caller frees it. */
char *dataplane_render_host_rules(const struct dataplane_host_net *nets,
                                  size_t n);

/* For tests and status. */
struct dataplane_stats {
    uint64_t syncs;         /* passes made */
    uint64_t reconciles;    /* overlay reconciles that changed something */
    uint64_t vip_applies;   /* VIP rule sets applied */
    size_t docker_networks; /* Docker networks of ours known to exist */
    bool docker_listed;     /* dockerd answered a network list */
};
void dataplane_stats(const struct dataplane *dp, struct dataplane_stats *out);

#endif
