/* The supervisor's control socket: the requests of orch's commands
 * (status, start, stop, restart, remove, reload, events, logs...), each
 * answered at once or when what it waits for is done. */
#include "orchestrator/supervisor/supervise_impl.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

/* ---- control socket -------------------------------------------------------
 */

static void client_close(struct client *cl)
{
	ep_del(cl->fd);
	close(cl->fd);
	sb_free(&cl->in);
	strv_free(cl->names);
	free(cl->at);
	json_decref(cl->errors);
	memset(cl, 0, sizeof(*cl));
}

/* What a client is told is on disk first. */
static void reply(struct client *cl, json_t *j)
{
	save_status();
	send_line(cl->fd, j);
	json_decref(j);
	client_close(cl);
}

static void reply_ok(struct client *cl)
{
	json_t *j = json_pack("{s:b}", "ok", 1);
	if (cl->errors && json_object_size(cl->errors) > 0) {
		json_t *msgs = json_array();
		const char *k;
		json_t *v;
		json_object_foreach(cl->errors, k, v)
		    json_array_append(msgs, v);
		json_object_set_new(
		    j, "error",
		    json_string(json_string_value(json_array_get(msgs, 0))));
		json_object_set_new(j, "errors", msgs);
	}
	reply(cl, j);
}

static char **req_names(const json_t *req)
{
	char **v = jstrv(req, "names");
	if (v && v[0])
		return v;
	strv_free(v);
	v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < sup.n; i++)
		if (!sup.c[i].gone)
			strv_push(&v, sup.c[i].name);
	return v;
}

static void client_error(struct client *cl, const char *name, const char *msg)
{
	if (!cl->errors)
		cl->errors = json_object();
	json_object_set_new(cl->errors, name, json_string(msg));
}

/* Starts the named containers; the client is answered when every one
 * has started or failed to. */
static void start_names(struct client *cl, char **names)
{
	for (size_t k = 0; names[k]; k++) {
		size_t idx;
		struct sctr *c = ctr_find(names[k], &idx);
		if (!c) {
			_cleanup_free_ char *m =
			    xasprintf("no such container: %s", names[k]);
			client_error(cl, names[k], m);
			continue;
		}
		c->user_stopped = false;
		if (c->state == C_RESTARTING)
			c->restart_at = 0;
		if (c->state != C_RUNNING)
			ctr_start(c, idx, false);
	}
	workers_start();
	cl->wait = W_START;
}

/* A waiting client is answered once none of its containers runs. */
void check_waiters(void)
{
	for (size_t i = 0; i < sup.n_cl; i++) {
		struct client *cl = &sup.cl[i];
		if (!cl->used || cl->wait == W_NONE || cl->wait == W_EVENTS)
			continue;
		bool busy = false;
		if (!cl->at)
			cl->at = xcalloc(strv_len(cl->names) + 1,
					 sizeof(*cl->at));
		for (size_t k = 0; cl->names[k]; k++) {
			struct sctr *c = ctr_find_at(cl->names[k], &cl->at[k]);
			if (c &&
			    (c->worker || c->queued || c->going ||
			     (cl->wait != W_START && c->state == C_RUNNING)))
				busy = true;
		}
		if (busy)
			continue;
		if (cl->wait == W_RESTART) {
			start_names(cl, cl->names);
			continue;
		}
		if (cl->wait == W_START)
			for (size_t k = 0; cl->names[k]; k++) {
				struct sctr *c = ctr_find(cl->names[k], NULL);
				if (c && c->start_err)
					client_error(cl, cl->names[k],
						     c->start_err);
			}
		if (cl->wait == W_REMOVE)
			for (size_t k = 0; cl->names[k]; k++) {
				struct sctr *c = ctr_find(cl->names[k], NULL);
				if (!c)
					continue;
				struct orch_err e = {0};
				rt_delete(c->id, true, &e);
				ctr_event(c, "destroy", NULL);
				ctr_fini(c);
				sup.dirty = true;
			}
		reply_ok(cl);
	}
}

/* Re-reads state.json, keeping what status.json knows of each
 * container. */
static void reload(void)
{
	_cleanup_free_ char *sf = path_join(sup.dir, "status.json");
	json_t *st = json_load_file(sf, 0, NULL);
	load_state(st);
	json_decref(st);
}

/* The "records" of a start or create: the containers up has just made,
 * added without the whole state read again for them (its records are
 * trusted as the state file is: from root or our own user); else with
 * "reload", the state has just gained them. */
static void records_add(const struct client *cl, const json_t *req)
{
	json_t *recs = json_object_get(req, "records");
	if (json_is_array(recs) && (cl->uid == 0 || cl->uid == getuid())) {
		size_t i;
		json_t *r;
		json_array_foreach(recs, i, r)
			if (json_is_object(r))
				ctr_add(r, NULL);
	} else if (jbool(req, "reload")) {
		reload();
	}
}

static void handle_request(struct client *cl, json_t *req)
{
	const char *op = jstr(req, "op");
	if (!op)
		op = "";
	if (streq(op, "status")) {
		json_t *a = json_array();
		for (size_t i = 0; i < sup.n; i++)
			if (!sup.c[i].gone)
				json_array_append_new(a, ctr_status(&sup.c[i]));
		reply(cl, json_pack("{s:b, s:o, s:i}", "ok", 1, "containers", a,
				    "pid", (int)getpid()));
	} else if (streq(op, "reload")) {
		reload();
		reply_ok(cl);
	} else if (streq(op, "start")) {
		records_add(cl, req);
		cl->names = req_names(req);
		start_names(cl, cl->names);
		check_waiters();
	} else if (streq(op, "create")) {
		/* Made ahead of their start, which comes later: answered at
		 * once. */
		records_add(cl, req);
		_cleanup_strv_ char **names = jstrv(req, "names");
		for (size_t k = 0; names && names[k]; k++) {
			size_t idx;
			struct sctr *c = ctr_find(names[k], &idx);
			if (c)
				ctr_prepare(c, idx);
		}
		workers_start();
		reply_ok(cl);
	} else if (streq(op, "stop") || streq(op, "restart") ||
		   streq(op, "remove")) {
		cl->names = req_names(req);
		int64_t t = jint(req, "timeout_ms", -1);
		for (size_t k = 0; cl->names[k]; k++) {
			struct sctr *c = ctr_find(cl->names[k], NULL);
			if (c)
				ctr_stop(c, streq(op, "remove") &&
						    jbool(req, "force")
						? 0
						: t);
		}
		cl->wait = streq(op, "stop")	  ? W_STOP
			   : streq(op, "restart") ? W_RESTART
						  : W_REMOVE;
		check_waiters();
	} else if (streq(op, "kill")) {
		char **names = req_names(req);
		int sig = (int)jint(req, "signal", SIGKILL);
		for (size_t k = 0; names[k]; k++) {
			struct sctr *c = ctr_find(names[k], NULL);
			if (c && c->state == C_RUNNING) {
				/* As docker: a signal meant to end it (SIGKILL
				 * or its stop signal) keeps it down; another
				 * (a reload) does not. */
				if (sig == SIGKILL || sig == c->stop_signal)
					c->user_stopped = true;
				ctr_signal(c, sig);
				ctr_event(c, "kill",
					  json_pack("{s:s}", "signal",
						    signal_name(sig)));
			}
		}
		strv_free(names);
		reply_ok(cl);
	} else if (streq(op, "pause") || streq(op, "unpause")) {
		_cleanup_strv_ char **names = req_names(req);
		struct orch_err e = {0};
		for (size_t k = 0; names[k] && !e.code; k++) {
			struct sctr *c = ctr_find(names[k], NULL);
			if (!c || c->state != C_RUNNING)
				err_set(&e, EINVAL, "container %s is not running",
					names[k]);
			else
				ctr_pause(c, streq(op, "pause"), &e);
		}
		if (e.code)
			reply(cl, json_pack("{s:s}", "error", e.msg));
		else
			reply_ok(cl);
	} else if (streq(op, "events")) {
		cl->wait = W_EVENTS;
	} else if (streq(op, "exit")) {
		sup.exiting = true;
		reply_ok(cl);
	} else
		reply(cl, json_pack("{s:s}", "error", "unknown request"));
}

/* The largest request read (a start with its records). */
#define REQUEST_MAX (16 << 20)

void client_read(struct client *cl)
{
	char buf[65536];
	ssize_t n = RETRY_EINTR(recv(cl->fd, buf, sizeof(buf), 0));
	if (n < 0 || (n == 0 && (cl->wait != W_NONE || !cl->in.len))) {
		client_close(cl);
		return;
	}
	if (cl->wait != W_NONE)
		return; /* nothing more is expected from a waiting client */
	/* A request is one line, read as it comes (or up to the client's
	 * end of writing). */
	if (n > 0) {
		sb_add(&cl->in, buf, (size_t)n);
		if (!memchr(buf, '\n', (size_t)n)) {
			if (cl->in.len > REQUEST_MAX)
				reply(cl, json_pack("{s:s}", "error",
						    "request too large"));
			return;
		}
	}
	json_t *req = json_loadb(cl->in.buf, cl->in.len,
				 JSON_DISABLE_EOF_CHECK, NULL);
	if (!json_is_object(req)) {
		json_decref(req);
		reply(cl, json_pack("{s:s}", "error", "malformed request"));
		return;
	}
	handle_request(cl, req);
	json_decref(req);
}

void client_accept(void)
{
	int fd = accept4(sup.lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* Only the project's owner (and root) may drive it. */
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uid_t owner = (uid_t)jint(sup.state, "owner_uid", 0);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != 0 && cr.uid != owner && cr.uid != getuid())) {
		close(fd);
		return;
	}
	size_t i = 0;
	while (i < sup.n_cl && sup.cl[i].used)
		i++;
	if (i == sup.n_cl)
		sup.cl = xrealloc(sup.cl, ++sup.n_cl * sizeof(*sup.cl));
	memset(&sup.cl[i], 0, sizeof(sup.cl[i]));
	sup.cl[i].fd = fd;
	sup.cl[i].uid = cr.uid;
	sb_init(&sup.cl[i].in);
	sup.cl[i].used = true;
	ep_add(fd, TAG(K_CLIENT, i));
}
