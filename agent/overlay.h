/* Private to agent/: the overlay networks of this node, made to match a
 * desired state through netlink (agent/netlink.h).
 *
 * Per overlay network with a local task the node has
 *   - a Linux bridge "skb" + the first 10 characters of the network ID,
 *     holding the network's gateway address (gw/prefix: the same on every
 *     node; each node answers for it locally, containers route through it)
 *     and, once the leader gave it one, this node's own address there
 *     (node_addr/prefix, a second address), with the MAC 02:42 + the four
 *     bytes of node_addr (sk_overlay_mac_of), as a container's, so other
 *     nodes compute it;
 *   - a VXLAN device "skv" + the same 10 characters, enslaved to it: the
 *     network's VNI, local address = the node's data-path address, UDP
 *     port 4789, no learning, proxy ARP (ARP for a remote task is answered
 *     from the device's neighbour table, never sent over the wire), MTU =
 *     the data interface's MTU - 50;
 *   - for every remote endpoint on the network (a task, or another node's
 *     own address): a static FDB entry on the VXLAN device (its MAC -> the
 *     remote node's data-path address) and a permanent neighbour entry
 *     (its IP -> its MAC). No multicast group, no default destination:
 *     nothing is flooded to other nodes, and nothing is ever sent for the
 *     gateway, which every node answers itself.
 * The names are derived from the network ID alone, so a restarted agent
 * finds its devices again, and they fit IFNAMSIZ.
 *
 * The Docker side (verified with Debian 12's docker.io 20.10.24, API 1.41,
 * kernel 6.18, with the docker CLI (tests/lab/net-proto-*.sh) and with
 * these request bodies sent to /v1.41 directly):
 *   docker network create -d bridge --subnet 10.0.1.0/24 --gateway GW
 *     -o com.docker.network.bridge.name=skb<10 of ID>
 *     -o com.docker.network.driver.mtu=1450 [--internal] NAME
 *   = POST /networks/create {"Name": NAME, "Driver": "bridge",
 *     "CheckDuplicate": true, "Internal": false,
 *     "IPAM": {"Driver": "default",
 *              "Config": [{"Subnet": "10.0.1.0/24", "Gateway": GW}]},
 *     "Options": {"com.docker.network.bridge.name": "skb...",
 *                 "com.docker.network.driver.mtu": "1450"}}
 *   where GW is the network's gateway. dockerd takes the bridge that
 *   exists as it is, also with GW/prefix already on it (it adds the
 *   address, with broadcast, when missing), and leaves bridge and address
 *   in place on `docker network rm`. It looks at the bridge's first IPv4
 *   address only, and replaces it if it is not GW: so the gateway is the
 *   bridge's first (primary) address and node_addr comes second. The MTU option
 * gives the containers' veths 1450. Docker's isolation chains
 * (DOCKER-ISOLATION-STAGE-1/2) name the bridge like any of its own, so two
 * skiff networks on a node cannot reach each other, nor the default bridge
 * them; --internal adds its DROP rules for traffic leaving the subnet.
 *   Containers: `docker run --network NAME --ip A --dns GW` = HostConfig
 *   {"NetworkMode": NAME, "Dns": [GW]} and NetworkingConfig
 *   {"EndpointsConfig": {NAME: {"IPAMConfig": {"IPv4Address": A}}}}:
 *   Docker's IPAM never picks. dockerd gives the container the MAC
 *   02:42:a:b:c:d for address a.b.c.d (sk_overlay_mac_of()) when none is
 *   set, so every node computes a remote task's MAC from its address (a
 *   MAC given in the create body's Config.MacAddress is honoured too).
 *   The gateway and every node's own address are addresses of the subnet
 *   that no task gets: the allocator reserves them.
 *
 * sk_overlay_reconcile() is pure logic over the netlink ops: it reads one
 * snapshot of the devices named "skb*" and "skv*", then adds what is
 * missing, changes what differs, and removes what is stale (entries of
 * tasks gone, addresses not wanted, and the devices of networks no longer
 * wanted). What already matches is adopted: a second call with the same
 * desired state makes no change at all. Remove the Docker network of a
 * network before its devices go: dockerd keeps a network whose bridge
 * vanished, and a container then fails to start on it ("could not find
 * bridge"); a bridge made anew under it works again, but dockerd does not
 * put the gateway address back (the reconcile does). Synchronous; no
 * callbacks; on the agent's loop thread. */
#ifndef SKIFF_AGENT_OVERLAY_H
#define SKIFF_AGENT_OVERLAY_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/netlink.h"
#include "skiff/err.h"

#define SK_OVERLAY_BRIDGE_PREFIX "skb"
#define SK_OVERLAY_VXLAN_PREFIX "skv"
/* Characters of the network ID in device names: "skb" + 10 = 13 < 16. */
#define SK_OVERLAY_ID_CHARS 10
#define SK_OVERLAY_VXLAN_PORT 4789
/* Outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. */
#define SK_OVERLAY_VXLAN_OVERHEAD 50

/* A task of the network on another node. */
struct sk_overlay_endpoint {
    struct in_addr ip;
    uint8_t mac[6];
    struct in_addr vtep; /* the data-path address of its node */
};

/* One network this node takes part in. Borrowed by the reconcile. */
struct sk_overlay_network {
    const char *id; /* the network's ID: letters and digits, >= 10 of them */
    uint32_t vni;   /* 1 .. 2^24 - 1 */
    struct in_addr subnet;
    uint8_t prefix;           /* of the subnet, 8 .. 30 */
    struct in_addr gateway;   /* the network's gateway */
    struct in_addr node_addr; /* this node's own address; 0.0.0.0: none */
    unsigned mtu;             /* the data interface's MTU - 50 */
    const struct sk_overlay_endpoint *remotes;
    size_t n_remotes;
};

struct sk_overlay_desired {
    struct in_addr local_vtep; /* this node's data-path address */
    const struct sk_overlay_network *networks;
    size_t n_networks;
    /* Devices of networks not wanted that must stay for now (their Docker
     * network is not removed yet): the network IDs of `keep`, or, with
     * keep_all, every device there is. Their entries are left alone. */
    const char *const *keep;
    size_t n_keep;
    bool keep_all;
    /* Optional, n_networks entries: set to whether that network's change
     * failed (the others are reconciled all the same). */
    bool *out_failed;
};

/* Device names of a network ("skb"/"skv" + 10 characters of the ID). */
void sk_overlay_bridge_name(const char *network_id, char out[IFNAMSIZ]);
void sk_overlay_vxlan_name(const char *network_id, char out[IFNAMSIZ]);

/* The MAC dockerd gives a container with IPv4 address ip: 02:42 followed
 * by the address's four bytes. */
void sk_overlay_mac_of(struct in_addr ip, uint8_t out[6]);

/* Checks the desired state (IDs, VNIs, prefixes, the gateway and the node
 * address host addresses of the subnet and not the same, remote endpoints
 * inside the subnet, distinct, and neither of those two, no two networks
 * with the same device names or VNI, an MTU of at least 68). SK_EINVAL
 * with a message naming the network otherwise. */
enum sk_rc sk_overlay_check(const struct sk_overlay_desired *want,
                            struct sk_err *err);

/* Makes the kernel match `want` through ops (impl is passed through).
 * Checks `want` first and changes nothing if it is invalid. A network whose
 * change fails does not stop the others: every network is tried and the
 * first error is returned (wrapped with the network's ID); a later call
 * retries what is left. *out_changes (may be NULL) counts the changes that
 * were made. */
enum sk_rc sk_overlay_reconcile(const struct sk_netlink_ops *ops, void *impl,
                                const struct sk_overlay_desired *want,
                                size_t *out_changes, struct sk_err *err);

#endif
