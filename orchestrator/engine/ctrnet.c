/* A container's surroundings, set up before it first starts and torn
 * down after it is gone: its persistent network namespace (a bind mount
 * under the project directory, so netd attaches endpoints once and
 * restarts keep their addresses), endpoints, published ports, the
 * /etc/hosts, /etc/hostname and /etc/resolv.conf it mounts, and its
 * volumes. */
#include "orchestrator/engine/engine.h"
#include "netd/netd.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static struct netd_conn *netd_c;

int netd_get(struct netd_conn **c, struct orch_err *e)
{
	if (!netd_c) {
		int r = netd_connect(&netd_c, e);
		if (r < 0)
			return err_wrap(e, "connecting to netd");
	}
	*c = netd_c;
	return 0;
}

/* ---- network namespaces ----------------------------------------------------- */

/* A new network namespace bound on path, made by a child process: a
 * rootless orch cannot go back to the host's network namespace once it
 * left it. */
static int netns_bind_new_child(const char *path, struct orch_err *e)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys(e, errno, "making a pipe");
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		struct orch_err ce = {0};
		if (netns_unshare(&ce) == 0 &&
		    mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
			err_sys(&ce, errno, "binding a network namespace on %s",
				path);
		if (ce.code && write(p[1], &ce, sizeof(ce)) < 0)
			_exit(2);
		_exit(ce.code ? 1 : 0);
	}
	close(p[1]);
	_cleanup_close_ int rfd = p[0];
	if (pid < 0)
		return err_sys(e, errno, "forking");
	struct orch_err ce = {0};
	ssize_t n = read(rfd, &ce, sizeof(ce));
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)sizeof(ce) && ce.code) {
		*e = ce;
		return -ce.code;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(e, ECHILD, "creating a network namespace failed");
	return 0;
}

/* A new network namespace with lo up: one netd made ahead, while it was
 * idle, when up already talks to netd (the project has networks); else
 * made here. */
static int netns_new(struct orch_err *e)
{
	int fd = -1;
	struct orch_err ign = {0};
	if (netd_c && netd_netns_take(netd_c, &fd, &ign) == 0 && fd >= 0)
		return fd;
	return netns_make(e);
}

/* A new network namespace kept alive by a bind mount on path, with lo
 * up.  Made from this process (or netd), or a child when rootless. */
static int netns_create(const char *path, struct orch_err *e)
{
	_cleanup_close_ int fd =
		open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return err_sys(e, errno, "creating %s", path);
	int r;
	if (rootless()) {
		r = netns_bind_new_child(path, e);
		if (r < 0)
			unlink(path);
		return r;
	}
	_cleanup_close_ int ns = netns_new(e);
	if (ns < 0) {
		unlink(path);
		return ns;
	}
	char src[64];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", ns);
	if (mount(src, path, NULL, MS_BIND, NULL) < 0) {
		r = err_sys(e, errno, "binding a network namespace on %s",
			    path);
		unlink(path);
		return r;
	}
	return 0;
}

void netns_remove(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("unmounting %s: %s", path, strerror(errno));
	unlink(path);
}

/* ---- container setup and teardown ---------------------------------------- */

void ctr_teardown(struct pstate *ps, json_t *rec, bool detach,
			 bool anon_volumes, struct orch_err *e)
{
	const char *name = jstr(rec, "name"), *id = jstr(rec, "id");
	struct orch_err ign = {0};
	if (id)
		rt_delete(id, true, &ign);
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(rec, "networks"), i, n)
	{
		if (!jstr(n, "address") ||
		    (!detach && !jbool(n, "external")))
			continue;
		struct netd_conn *c = NULL;
		if (netd_get(&c, &ign) == 0 &&
		    netd_endpoint_detach(c, jstr(n, "network"), id, NULL, &ign) <
			    0 &&
		    !e->code)
			err_wrap(&ign, "detaching %s", name), *e = ign;
	}
	if (jstr(rec, "netns") && !jstr(rec, "netns_shared"))
		netns_remove(jstr(rec, "netns"));
	/* The runtime forgets the upper dir once a stopped container's
	 * state is gone, so it is removed here by the path we gave it. */
	const char *upper = jstr(json_object_get(rec, "spec"), "upper_dir");
	if (upper)
		rt_upper_remove(upper, &ign);
	_cleanup_free_ char *etc = xasprintf("%s/etc/%s", ps->dir, name);
	rm_rf(etc, &ign);
	const char *sfx[] = {".log",	".log.1", ".log.2",
			     ".log.3", ".fifo",	 ".stdin"};
	for (size_t k = 0; k < ARRAY_SIZE(sfx); k++) {
		_cleanup_free_ char *p =
			xasprintf("%s/logs/%s%s", ps->dir, name, sfx[k]);
		unlink(p);
	}
	if (anon_volumes) {
		json_t *v;
		json_array_foreach(json_object_get(rec, "anon_volumes"), i, v)
			rt_volume_remove(json_string_value(v), &ign);
	}
}

/* The IP addresses (IPv4 or IPv6) of v (taking v). */
static char **ip_only(char **v)
{
	char **out = NULL;
	for (size_t i = 0; v && v[i]; i++) {
		struct in6_addr a;
		if (inet_pton(AF_INET, v[i], &a) == 1 ||
		    inet_pton(AF_INET6, v[i], &a) == 1)
			strv_push(&out, v[i]);
	}
	strv_free(v);
	return out;
}

static int write_text(const char *path, const char *txt, struct orch_err *e)
{
	return write_file_atomic(path, txt, strlen(txt), 0644, e);
}

static json_t *find_rec_of_service(struct pstate *ps, const char *svc)
{
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c)
	{
		if (streq(jstr(c, "service") ?: "", svc))
			return c;
	}
	return NULL;
}

/* Picks a host port for a publication: the first of the range that netd
 * accepts; published 0 lets the kernel choose a free one. */
static int pick_port(struct netd_conn *c, const char *network, const char *id,
		     json_t *spec, unsigned *port, struct orch_err *e)
{
	unsigned lo = (unsigned)jint(spec, "published", 0);
	unsigned hi = (unsigned)jint(spec, "published_end", lo);
	const char *proto = jstr(spec, "protocol");
	if (lo == 0) {
		_cleanup_close_ int s = socket(
			AF_INET,
			(streq(proto, "udp") ? SOCK_DGRAM : SOCK_STREAM) |
				SOCK_CLOEXEC,
			0);
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);
		if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(s, (struct sockaddr *)&sa, &sl) < 0)
			return err_sys(e, errno, "picking a host port");
		*port = ntohs(sa.sin_port);
		return 0;
	}
	int r = 0;
	for (unsigned p = lo; p <= hi; p++) {
		struct netd_port_req q = {
			.network = network,
			.container_id = id,
			.proto = proto,
			.host_ip = jstr(spec, "host_ip"),
			.host_port = p,
			.container_port = (unsigned)jint(spec, "target", 0),
		};
		r = netd_port_check(c, &q, e);
		if (r == 0) {
			*port = p;
			return 0;
		}
	}
	return r;
}

/* How many specs from first on form one range of fixed ports, host and
 * container ports both counting up by one: netd publishes such a range in
 * one request (a 20,000-port range costs about what a port costs). */
static size_t port_run_length(json_t *specs, size_t first)
{
	json_t *a = json_array_get(specs, first);
	unsigned lo = (unsigned)jint(a, "published", 0);
	if (lo == 0 || (unsigned)jint(a, "published_end", lo) != lo)
		return 1;
	size_t n = 1;
	for (json_t *b; (b = json_array_get(specs, first + n)); n++) {
		unsigned p = (unsigned)jint(b, "published", 0);
		if (p != lo + n || (unsigned)jint(b, "published_end", p) != p ||
		    jint(b, "target", 0) != jint(a, "target", 0) + (long)n ||
		    !streq(jstr(b, "protocol") ?: "", jstr(a, "protocol") ?: "") ||
		    !streq(jstr(b, "host_ip") ?: "", jstr(a, "host_ip") ?: ""))
			break;
	}
	return n;
}

/* Publishes specs[first] and the specs of its range (*n of them), and
 * records each port in pubs as ps shows them: on every address, once
 * for IPv4 ("0.0.0.0") and, when the container has IPv6 (v6), once for
 * IPv6 ("::"), as docker shows them. */
static int publish_run(struct netd_conn *c, const char *network,
		       const char *id, bool v6, json_t *specs, size_t first,
		       json_t *pubs, size_t *n, struct orch_err *e)
{
	json_t *p = json_array_get(specs, first);
	*n = port_run_length(specs, first);
	unsigned hp = 0;
	int r = *n > 1 ? 0 : pick_port(c, network, id, p, &hp, e);
	if (r < 0)
		return r;
	if (*n > 1)
		hp = (unsigned)jint(p, "published", 0);
	unsigned target = (unsigned)jint(p, "target", 0);
	struct netd_port_req q = {
		.network = network,
		.container_id = id,
		.proto = jstr(p, "protocol"),
		.host_ip = jstr(p, "host_ip"),
		.host_port = hp,
		.container_port = target,
		.count = (unsigned)*n,
	};
	r = netd_port_publish(c, &q, e);
	if (r < 0)
		return *n > 1 ? err_wrap(e, "publishing ports %u-%u", hp,
					 hp + (unsigned)*n - 1)
			      : err_wrap(e, "publishing port %u", hp);
	const char *hip = jstr(p, "host_ip");
	const char *urls[2] = {hip && *hip ? hip : "0.0.0.0",
			       hip && *hip ? NULL : v6 ? "::" : NULL};
	for (size_t u = 0; u < 2 && urls[u]; u++)
		for (size_t k = 0; k < *n; k++)
			json_array_append_new(
				pubs,
				json_pack("{s:s, s:i, s:i, s:s}", "URL",
					  urls[u], "TargetPort",
					  (int)(target + k), "PublishedPort",
					  (int)(hp + k), "Protocol",
					  jstr(p, "protocol")));
	return 0;
}

int ctr_idrange(struct pstate *ps, struct orch_err *e)
{
	if (ps->idrange_held)
		return 0;
	int r = rt_idrange_acquire(ps->name, &ps->idrange_base, e);
	if (r == 0)
		ps->idrange_held = true;
	return r;
}

/* Whether path is dir or in it. */
static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || !path[n]);
}

/* The mounts of volumes_from: each volume and bind (not the /etc files
 * and secrets orch made for it, not a tmpfs) of the first container of
 * a service ("svc[:ro|:rw]"), or of a container of the project by name
 * ("container:NAME[:ro|:rw]"), at the same target, read-only as there
 * unless the suffix says; a target rec mounts itself stays its own. */
static int volumes_from(struct pstate *ps, const struct project *m,
			json_t *rec, json_t *mounts, struct orch_err *e)
{
	const struct service *s =
	    m ? project_service(m, jstr(rec, "service") ?: "") : NULL;
	const char *name = jstr(rec, "name");
	for (size_t i = 0; s && s->volumes_from && s->volumes_from[i]; i++) {
		_cleanup_free_ char *ref = xstrdup(s->volumes_from[i]);
		bool by_name = startswith(ref, "container:");
		char *who = by_name ? ref + 10 : ref;
		char *mode = strchr(who, ':');
		if (mode)
			*mode++ = '\0';
		if (mode && !streq(mode, "ro") && !streq(mode, "rw"))
			return err_set(e, EINVAL,
				       "%s: volumes_from %s: the mode is ro or "
				       "rw",
				       name, s->volumes_from[i]);
		json_t *src = by_name
				  ? json_find_named(state_containers(ps), who)
				  : find_rec_of_service(ps, who);
		if (!src || src == rec)
			return err_set(e, ENOENT,
				       "%s: volumes_from %s: no container of "
				       "this project is %s",
				       name, s->volumes_from[i],
				       by_name ? "named so" : "of that service");
		size_t k;
		json_t *mt;
		json_array_foreach(
		    json_object_get(json_object_get(src, "spec"), "mounts"), k,
		    mt)
		{
			const char *type = jstr(mt, "type") ?: "";
			const char *from = jstr(mt, "source") ?: "";
			const char *target = jstr(mt, "target") ?: "";
			if (!streq(type, "volume") &&
			    !(streq(type, "bind") && !path_under(from, ps->dir)))
				continue;
			bool own = false;
			size_t j;
			json_t *o;
			json_array_foreach(mounts, j, o)
				own |= streq(jstr(o, "target") ?: "", target);
			if (own || !*from)
				continue;
			json_t *copy = json_deep_copy(mt);
			if (mode)
				json_object_set_new(copy, "readonly",
						    json_boolean(streq(mode, "ro")));
			json_array_append_new(mounts, copy);
		}
	}
	return 0;
}

/* Gives a fresh record its namespace, endpoints, ports, /etc files and
 * volumes.  What was done is recorded in rec as it goes, so that
 * teardown_one undoes exactly that. */
int ctr_setup(struct pstate *ps, const struct project *m, json_t *rec,
		     struct orch_err *e)
{
	const char *name = jstr(rec, "name"), *id = jstr(rec, "id");
	json_t *spec = json_object_get(rec, "spec");
	const char *mode = jstr(rec, "network_mode");
	bool host = mode && streq(mode, "host");
	int r;
	uint32_t base = 0;
	if (jbool(spec, "userns")) {
		if (ctr_idrange(ps, e) < 0)
			return err_wrap(e, "%s", name);
		base = ps->idrange_base;
		json_object_set_new(spec, "userns_base", json_integer(base));
	}
	/* How the container's ids are stored, and its root's. */
	struct rt_ids ids;
	rt_ids_base(&ids, base);
	if (jbool(spec, "keep_id") && rt_keepid_ids(&ids, e) < 0)
		return err_wrap(e, "%s", name);
	uid_t root_uid = 0;
	gid_t root_gid = 0;
	rt_idmap_find(ids.uid, ids.n_uid, 0, false, &root_uid);
	rt_idmap_find(ids.gid, ids.n_gid, 0, false, &root_gid);
	bool shifted = root_uid || root_gid;
	/* pid and ipc of another container of the project, by its name:
	 * the supervisor finds its process at each start. */
	static const char *const kinds[][3] = {{"pid", "pid_mode", "pid_of"},
					       {"ipc", "ipc_mode", "ipc_of"}};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const char *v = jstr(spec, kinds[i][1]);
		if (!v)
			continue;
		bool svc = startswith(v, "service:");
		json_t *other =
		    svc ? find_rec_of_service(ps, v + 8)
			: json_find_named(state_containers(ps),
					  startswith(v, "container:") ? v + 10
								      : v);
		if (!other || other == rec)
			return err_set(e, ENOENT, "%s: %s %s: %s", name,
				       kinds[i][0], v,
				       svc ? "that service has no container"
					   : "no container of this project "
					     "has that name");
		json_object_set_new(spec, kinds[i][2],
				    json_string(jstr(other, "name")));
	}
	unsigned ns = RT_NS_DEFAULT & ~(host ? (unsigned)RT_NS_NET : 0u) &
		      ~(jbool(spec, "uts_host") ? (unsigned)RT_NS_UTS : 0u) &
		      ~(jbool(spec, "ipc_host") ? (unsigned)RT_NS_IPC : 0u) &
		      ~(jbool(spec, "pid_host") || jstr(spec, "pid_of")
			    ? (unsigned)RT_NS_PID
			    : 0u) &
		      ~(jstr(spec, "ipc_of") ? (unsigned)RT_NS_IPC : 0u) &
		      ~(jbool(spec, "cgroup_host") ? (unsigned)RT_NS_CGROUP : 0u);
	if (ns != RT_NS_DEFAULT)
		json_object_set_new(spec, "namespaces", json_integer(ns));
	if (host) {
		/* The host's network namespace: none of its own. */
	} else if (mode && (startswith(mode, "service:") ||
			    startswith(mode, "container:"))) {
		/* container:NAME: a container of this project, by name. */
		bool svc = startswith(mode, "service:");
		json_t *other =
		    svc ? find_rec_of_service(ps, mode + 8)
			: json_find_named(state_containers(ps), mode + 10);
		if (!other || !jstr(other, "netns"))
			return err_set(e, ENOENT,
				       "%s: network_mode %s: %s", name, mode,
				       svc ? "that service has no container"
					   : "no container of this project "
					     "has that name (a container of "
					     "another project or of docker's "
					     "is not joined)");
		json_object_set_new(rec, "netns",
				    json_string(jstr(other, "netns")));
		json_object_set_new(rec, "netns_shared", json_true());
	} else {
		_cleanup_free_ char *dir = pstate_path(ps, "netns");
		mkdir(dir, 0700);
		_cleanup_free_ char *path = path_join(dir, name);
		r = netns_create(path, e);
		if (r < 0)
			return err_wrap(e, "creating %s", name);
		json_object_set_new(rec, "netns", json_string(path));
	}
	if (jstr(rec, "netns"))
		json_object_set(spec, "netns", json_object_get(rec, "netns"));

	/* Endpoints, in the service's network order. */
	const char *gateway = NULL, *address = NULL, *address6 = NULL;
	const char *host_gw = NULL, *host_gw6 = NULL;
	const char *first_net = NULL;
	bool first_v6 = false;
	size_t i;
	json_t *n;
	bool attach = !mode || (!streq(mode, "none") && !host &&
				!startswith(mode, "service:") &&
				!startswith(mode, "container:"));
	json_array_foreach(json_object_get(rec, "networks"), i, n)
	{
		if (!attach)
			break;
		struct netd_conn *c = NULL;
		r = netd_get(&c, e);
		if (r < 0)
			return r;
		_cleanup_strv_ char **aliases = jstrv(n, "aliases");
		_cleanup_strv_ char **links = jstrv(rec, "links");
		_cleanup_strv_ char **dns = ip_only(jstrv(rec, "dns"));
		struct netd_attach_req q = {
			.network = jstr(n, "network"),
			.container_id = id,
			.container_name = name,
			.service = jstr(rec, "service"),
			.aliases = aliases,
			.links = links,
			.netns_path = jstr(rec, "netns"),
			.address = jstr(n, "ipv4_address"),
			.address6 = jstr(n, "ipv6_address"),
			.mac_address = jstr(n, "mac_address"),
			/* compose's one-off: its name only, unless
			 * --use-aliases. */
			.named_only = jbool(rec, "oneoff") &&
				      !jbool(rec, "use_aliases"),
			.dns = dns,
		};
		struct netd_endpoint ep = {0};
		r = netd_endpoint_attach(c, &q, &ep, e);
		if (r < 0)
			return err_wrap(e, "attaching %s to %s", name,
					q.network);
		json_object_set_new(n, "address", json_string(ep.address));
		json_object_set_new(n, "gateway", json_string(ep.gateway));
		json_object_set_new(n, "ifname", json_string(ep.ifname));
		if (ep.address6 && *ep.address6) {
			json_object_set_new(n, "address6",
					    json_string(ep.address6));
			json_object_set_new(n, "gateway6",
					    json_string(ep.gateway6));
		}
		netd_endpoint_clear(&ep);
		if (!first_net) {
			/* netd's resolver listens on both gateways. */
			gateway = *jstr(n, "gateway") ? jstr(n, "gateway")
						      : jstr(n, "gateway6");
			address = jstr(n, "address");
			address6 = jstr(n, "address6");
			first_v6 = address6 != NULL;
			host_gw = *jstr(n, "gateway") ? jstr(n, "gateway") : NULL;
			host_gw6 = first_v6 ? jstr(n, "gateway6") : NULL;
			first_net = jstr(n, "network");
		}
	}

	/* Published ports go to the first network's address. */
	json_t *pubs = json_array();
	json_object_set_new(rec, "ports", pubs);
	json_t *specs = json_object_get(rec, "port_specs");
	for (i = 0; i < json_array_size(specs);) {
		if (!first_net) {
			if (host)
				break;
			return err_set(e, EINVAL,
				       "%s: ports need a network to publish to",
				       name);
		}
		struct netd_conn *c = NULL;
		r = netd_get(&c, e);
		if (r < 0)
			return r;
		size_t cnt = 0;
		r = publish_run(c, first_net, id, first_v6, specs, i, pubs,
				&cnt, e);
		if (r < 0)
			return err_wrap(e, "publishing ports of %s", name);
		i += cnt;
	}

	/* /etc/hosts, /etc/hostname, /etc/resolv.conf from files we own. */
	char shortid[13];
	snprintf(shortid, sizeof(shortid), "%s", id);
	const char *hostname = jstr(spec, "hostname");
	if (!hostname) {
		json_object_set_new(spec, "hostname", json_string(shortid));
		hostname = jstr(spec, "hostname");
	}
	bool has_hn = false;
	json_t *ev;
	json_array_foreach(json_object_get(spec, "env"), i, ev)
		has_hn |= startswith(json_string_value(ev), "HOSTNAME=");
	if (!has_hn)
		json_array_append_new(json_object_get(spec, "env"),
				      json_sprintf("HOSTNAME=%s", hostname));
	json_t *mounts = json_object_get(spec, "mounts");
	if (!host) {
		_cleanup_free_ char *etc = xasprintf("%s/etc/%s", ps->dir, name);
		r = mkdir_p(etc, 0755, e);
		if (r < 0)
			return r;
		struct strbuf sb;
		sb_init(&sb);
		sb_adds(&sb, "127.0.0.1\tlocalhost\n::1\tlocalhost "
			     "ip6-localhost ip6-loopback\n");
		if (address && *address)
			sb_printf(&sb, "%s\t%s %s\n", address, hostname, name);
		if (address6)
			sb_printf(&sb, "%s\t%s %s\n", address6, hostname, name);
		json_t *h;
		json_array_foreach(json_object_get(rec, "extra_hosts"), i, h)
		{
			/* "host-gateway": the host, as the first network's
			 * gateway (docker's host.docker.internal). */
			const char *line = json_string_value(h);
			if (!startswith(line, "host-gateway ")) {
				sb_printf(&sb, "%s\n", line);
				continue;
			}
			if (host_gw)
				sb_printf(&sb, "%s\t%s\n", host_gw, line + 13);
			if (host_gw6)
				sb_printf(&sb, "%s\t%s\n", host_gw6, line + 13);
		}
		_cleanup_free_ char *hosts = path_join(etc, "hosts");
		r = write_text(hosts, sb.buf, e);
		sb_free(&sb);
		if (r < 0)
			return r;
		_cleanup_free_ char *hn = path_join(etc, "hostname");
		_cleanup_free_ char *hntxt = xasprintf("%s\n", hostname);
		r = write_text(hn, hntxt, e);
		if (r < 0)
			return r;
		sb_init(&sb);
		/* On a network, netd's resolver (which forwards what it does
		 * not know); without one, the service's dns servers or the
		 * host's configuration. */
		_cleanup_strv_ char **dns = ip_only(jstrv(rec, "dns"));
		if (gateway)
			sb_printf(&sb, "nameserver %s\n", gateway);
		else if (dns && dns[0]) {
			for (size_t k = 0; dns[k]; k++)
				sb_printf(&sb, "nameserver %s\n", dns[k]);
		} else {
			_cleanup_free_ char *hostconf = NULL;
			struct orch_err ign = {0};
			if (read_file("/etc/resolv.conf", &hostconf, NULL,
				      &ign) == 0)
				sb_adds(&sb, hostconf);
		}
		_cleanup_strv_ char **search = jstrv(rec, "dns_search");
		if (search && search[0]) {
			sb_adds(&sb, "search");
			for (size_t k = 0; search[k]; k++)
				sb_printf(&sb, " %s", search[k]);
			sb_adds(&sb, "\n");
		}
		_cleanup_strv_ char **opts = jstrv(rec, "dns_opt");
		if (opts && opts[0]) {
			sb_adds(&sb, "options");
			for (size_t k = 0; opts[k]; k++)
				sb_printf(&sb, " %s", opts[k]);
			sb_adds(&sb, "\n");
		}
		_cleanup_free_ char *rc = path_join(etc, "resolv.conf");
		r = write_text(rc, sb.buf, e);
		sb_free(&sb);
		if (r < 0)
			return r;
		/* The container's root may edit them, as anywhere else. */
		const char *owned[] = {hosts, hn, rc};
		for (size_t k = 0; shifted && k < ARRAY_SIZE(owned); k++)
			if (chown(owned[k], root_uid, root_gid) < 0)
				return err_sys(e, errno, "giving %s to the "
					       "container's root", owned[k]);
		const char *files[][2] = {{hosts, "/etc/hosts"},
					  {hn, "/etc/hostname"},
					  {rc, "/etc/resolv.conf"}};
		for (size_t k = 0; k < ARRAY_SIZE(files); k++)
			json_array_append_new(
				mounts, json_pack("{s:s, s:s, s:s}", "type",
						  "bind", "source", files[k][0],
						  "target", files[k][1]));
	}

	r = ctr_files(ps, m, rec, &ids, mounts, e);
	if (r < 0)
		return r;

	/* Volumes: named ones by their data directory, anonymous ones
	 * those of the container this one replaces at the same target
	 * (reuse_anon, as compose keeps them), else created for it. */
	json_t *anon = json_array();
	json_object_set_new(rec, "anon_volumes", anon);
	json_t *anon_at = json_object();
	json_object_set_new(rec, "anon_targets", anon_at);
	json_t *inherited = json_array();
	json_object_set_new(rec, "anon_inherited", inherited);
	/* Handed over now, or by an up that failed after the container
	 * they came from was gone. */
	json_t *given = json_object_get(rec, "reuse_anon");
	json_auto_t *reuse =
	    json_deep_copy(given ? given : state_anon_kept(ps, rec));
	json_object_del(rec, "reuse_anon");
	_cleanup_image_ struct rt_image *img = NULL;
	json_t *mt;
	json_array_foreach(mounts, i, mt)
	{
		const char *type = jstr(mt, "type");
		if (streq(type, "bind") && jbool(mt, "create")) {
			struct stat st;
			if (stat(jstr(mt, "source"), &st) < 0) {
				r = mkdir_p(jstr(mt, "source"), 0755, e);
				if (r < 0)
					return err_wrap(e, "%s: bind source",
							name);
				/* Made for the container: its root's. */
				if (shifted &&
				    chown(jstr(mt, "source"), root_uid,
					  root_gid) < 0)
					return err_sys(e, errno, "%s: bind source %s",
						       name, jstr(mt, "source"));
			}
			continue;
		}
		if (!streq(type, "volume"))
			continue;
		_cleanup_free_ char *vname = NULL;
		const char *kept = jstr(reuse, jstr(mt, "target"));
		if (jstr(mt, "volume")) {
			vname = xstrdup(jstr(mt, "volume"));
		} else if (kept) {
			vname = xstrdup(kept);
			json_object_del(reuse, jstr(mt, "target"));
			json_array_append_new(anon, json_string(vname));
			json_array_append_new(inherited, json_string(vname));
			json_object_set_new(anon_at, jstr(mt, "target"),
					    json_string(vname));
		} else {
			char rid[65];
			random_id(rid);
			vname = xstrdup(rid);
			_cleanup_free_ char *l0 = xasprintf(
				"com.docker.compose.project=%s", ps->name);
			char *lbl[] = {l0, ANON_LABEL "=", NULL};
			struct rt_volume_opts vo = {.labels = lbl};
			bool exists;
			r = rt_volume_create(vname, &vo, &exists, e);
			if (r < 0)
				return err_wrap(e, "%s: anonymous volume",
						name);
			json_array_append_new(anon, json_string(vname));
			json_object_set_new(anon_at, jstr(mt, "target"),
					    json_string(vname));
		}
		/* A new volume mounted over image content is first filled
		 * with it, once (docker's copy-up). */
		if (!img && jstr(spec, "image") &&
		    rt_image_lookup(jstr(spec, "image"), &img, e) < 0)
			return err_wrap(e, "%s", name);
		_cleanup_free_ char *mountpoint = NULL;
		r = rt_volume_prepare(vname, img, jstr(mt, "target"), &ids,
				      &mountpoint, e);
		if (r < 0)
			return err_wrap(e, "%s: volume %s", name, vname);
		json_object_set_new(mt, "source", json_string(mountpoint));
	}
	/* Those of the replaced container this one has no target for. */
	const char *target;
	json_t *left;
	json_object_foreach(reuse, target, left)
	{
		struct orch_err ign = {0};
		rt_volume_remove(json_string_value(left), &ign);
	}
	return volumes_from(ps, m, rec, mounts, e);
}

