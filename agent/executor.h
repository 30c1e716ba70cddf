/* Private to agent/: the executor runs this node's tasks on its dockerd.
 *
 * The agent feeds it the node's assignments (each a task from the leader
 * with what the node needs to run it, in full or as changes) and it makes
 * dockerd match them:
 *
 *   assigned -> accepted -> preparing (its networks ready here; image
 *   present, or pulled) -> starting (container created on its first
 *   network, connected to the others) -> running (started)
 *   -> complete (exit 0) | failed (exit != 0) | shutdown (stopped on
 *   request) | rejected (could not start: image missing, bad spec)
 *
 * Every container carries labels skiff.service.id, skiff.service.name,
 * skiff.task.id, skiff.task.slot and skiff.node.id. On the first full set of
 * assignments it adopts the containers that are there: those of assigned
 * tasks are kept (never a duplicate), the others are removed. A task is
 * never restarted here: a finished task stays finished; the orchestrator
 * makes a new one. Exits are learnt from dockerd's events stream.
 *
 * A task on networks waits in preparing until the data plane has each of
 * them here (bridge and Docker network); one that is not after 30 s
 * rejects the task, naming the network, the node and why. Its container
 * gets the task's own address on each network (Docker's IPAM never picks)
 * and the first network's gateway as its DNS server.
 *
 * Every state it reaches goes to `report` (the agent sends them to the
 * leader). Without assignments (managers unreachable) it changes nothing:
 * running containers keep running. All on the loop thread. */
#ifndef SKIFF_AGENT_EXECUTOR_H
#define SKIFF_AGENT_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "agent/dataplane.h"
#include "skiff/docker.h"
#include "skiff/err.h"
#include "skiff/http.h"
#include "skiff/wire.h"

struct executor;

/* A task's state as the executor observed it (skiff/wire.h). Its strings
 * are borrowed for the call. */
typedef void (*executor_report_cb)(void *ctx, const struct sk_task_report *r);

/* dp: the node's data plane, which the executor asks whether a task's
 * networks are ready and tells about its tasks' addresses and running
 * containers (NULL: tasks with networks are rejected). */
struct executor *executor_new(uv_loop_t *loop, struct sk_docker *docker,
                              struct dataplane *dp, const char *node_id,
                              const char *node_name, executor_report_cb report,
                              void *ctx);
/* Stops watching dockerd and frees everything once in-flight dockerd calls
 * finished; containers are left as they are. cb runs then. */
void executor_close(struct executor *e, void (*cb)(void *ctx), void *ctx);

/* Applies an assignments message: with `full`, its tasks are everything
 * the node should know (anything else goes); otherwise they are changes
 * and `removed` lists forgotten task IDs. The assignments are taken over:
 * each is moved out of msg->tasks, which is left zeroed (the caller still
 * frees msg). */
void executor_assign(struct executor *e, struct sk_session_msg *msg);
/* Whether the executor may move a task from state `from` to `to` (enum
 * sk_task_state): the table of its lifecycle above, with the shortcuts
 * adoption, stopping and failures take. Any other move is refused (logged,
 * the state stays). Pure. */
bool executor_transition_ok(int from, int to);

/* The data plane's readiness changed (its changed_cb): tasks waiting for
 * their networks look again. */
void executor_networks_changed(struct executor *e);
/* How long a task waits for its networks before it is rejected (30 s;
 * tests shorten it). */
void executor_set_network_wait(struct executor *e, uint64_t ms);

/* Reports the current state of every task again (after reconnecting to a
 * new leader). */
void executor_report_all(struct executor *e);
/* How many tasks it holds, and how many containers it runs. */
size_t executor_tasks(const struct executor *e);

/* GET /v1/agent/logs?container=ID[&follow=1][&tail=N]: the container's
 * log lines as JSON lines {"s":1|2,"l":"..."}. Only containers of this
 * node's tasks. Finishes the request. */
void executor_serve_logs(struct executor *e, struct sk_http_req *req);

#endif
