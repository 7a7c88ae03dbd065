/* Reconciling the host with the model: `up` (plan, check, create, start,
 * roll back on failure) and the teardown shared by down, rm and
 * recreation.  Containers' network namespaces are persistent files under
 * the project directory, so endpoints are attached once and restarts
 * keep their addresses. */
#include "orchestrator/cli.h"
#include "netd/netd.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

static struct netd_conn *netd_c;

static int netd_get(struct netd_conn **c, struct orch_err *e)
{
	if (!netd_c) {
		int r = netd_connect(&netd_c, e);
		if (r < 0)
			return err_wrap(e, "connecting to netd");
	}
	*c = netd_c;
	return 0;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void progress(const char *kind, const char *name, const char *what)
{
	if (cli_quiet())
		return;
	if (cli_progress_tty())
		fprintf(stderr, " \033[32m\u2714\033[0m %s %-28s %s\n", kind, name,
			what);
	else
		fprintf(stderr, " %s %s  %s\n", kind, name, what);
}

/* ---- network namespaces ----------------------------------------------------- */

/* A new network namespace kept alive by a bind mount on path, with lo
 * up.  Made from this process: unshare, bind, and back. */
static int netns_create(const char *path, struct orch_err *e)
{
	_cleanup_close_ int fd =
		open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
	if (fd < 0)
		return err_sys(e, errno, "creating %s", path);
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return err_sys(e, errno, "opening our network namespace");
	if (unshare(CLONE_NEWNET) < 0)
		return err_sys(e, errno, "creating a network namespace");
	int r = 0;
	if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
		r = err_sys(e, errno, "binding a network namespace on %s", path);
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (r == 0 && s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Not being able to go back would leave orch itself in the
		 * container's network: nothing sane can follow. */
		log_error("returning to our network namespace: %s",
			  strerror(errno));
		abort();
	}
	if (r < 0)
		unlink(path);
	return r;
}

static void netns_remove(const char *path)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		log_warn("unmounting %s: %s", path, strerror(errno));
	unlink(path);
}

/* ---- state helpers -------------------------------------------------------- */

json_t *status_find(json_t *containers, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(containers, i, c)
	{
		if (jstr(c, "name") && streq(jstr(c, "name"), name))
			return c;
	}
	return NULL;
}

int status_get(struct pstate *ps, json_t **containers, struct orch_err *e)
{
	*containers = NULL;
	if (json_array_size(state_containers(ps)) == 0) {
		*containers = json_array();
		return 0;
	}
	int r = supervisor_ensure(ps, e);
	if (r < 0)
		return r;
	json_t *req = json_pack("{s:s}", "op", "status"), *rep = NULL;
	r = control_call(ps, req, &rep, e);
	json_decref(req);
	if (r < 0) {
		json_decref(rep);
		return r;
	}
	*containers = json_incref(json_object_get(rep, "containers"));
	json_decref(rep);
	if (!*containers)
		*containers = json_array();
	return 0;
}

char **containers_of(struct pstate *ps, char **services, bool *unknown)
{
	char **out = xcalloc(1, sizeof(char *));
	if (unknown)
		*unknown = false;
	size_t i;
	json_t *c;
	if (!services || !services[0]) {
		json_array_foreach(state_containers(ps), i, c)
			strv_push(&out, jstr(c, "name"));
		return out;
	}
	for (size_t k = 0; services[k]; k++) {
		bool found = false;
		json_array_foreach(state_containers(ps), i, c)
		{
			if (streq(jstr(c, "service") ?: "", services[k]) ||
			    streq(jstr(c, "name"), services[k])) {
				strv_push(&out, jstr(c, "name"));
				found = true;
			}
		}
		if (!found && unknown)
			*unknown = true;
	}
	return out;
}

static int call_simple(struct pstate *ps, json_t *req, struct orch_err *e)
{
	json_t *rep = NULL;
	int r = control_call(ps, req, &rep, e);
	json_decref(req);
	json_decref(rep);
	return r;
}

static json_t *names_json(char *const *names)
{
	json_t *a = json_array();
	for (size_t i = 0; names && names[i]; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

/* Dependency level of each recorded container's service, from the
 * depends_on kept in the records. */
static int record_level(struct pstate *ps, const char *service, int depth)
{
	if (depth > 64)
		return depth;
	int lv = 0;
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(ps), i, c)
	{
		if (!streq(jstr(c, "service") ?: "", service))
			continue;
		size_t k;
		json_t *d;
		json_array_foreach(json_object_get(c, "depends_on"), k, d)
		{
			int l = record_level(ps, json_string_value(d),
					     depth + 1) + 1;
			if (l > lv)
				lv = l;
		}
		break;
	}
	return lv;
}

int reconcile_stop(struct pstate *ps, char **names, int64_t timeout_ms,
		   const char *op, struct orch_err *e)
{
	_cleanup_strv_ char **all = names ? NULL : containers_of(ps, NULL, NULL);
	if (!names)
		names = all;
	size_t n = strv_len(names);
	if (n == 0)
		return 0;
	int r = supervisor_ensure(ps, e);
	if (r < 0)
		return r;
	_cleanup_free_ int *lv = xcalloc(n, sizeof(int));
	int max = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *c = state_container_find(ps, names[i]);
		lv[i] = c ? record_level(ps, jstr(c, "service") ?: "", 0) : 0;
		if (lv[i] > max)
			max = lv[i];
	}
	/* Dependents first, each level in one request (in parallel). */
	for (int l = max; l >= 0; l--) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			if (lv[i] == l)
				json_array_append_new(a, json_string(names[i]));
		if (json_array_size(a) == 0) {
			json_decref(a);
			continue;
		}
		json_t *req = json_pack("{s:s, s:o, s:I}", "op", op, "names", a,
					"timeout_ms", (json_int_t)timeout_ms);
		r = call_simple(ps, req, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- container setup and teardown ---------------------------------------- */

static void teardown_one(struct pstate *ps, json_t *rec, bool detach,
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
		rm_rf(upper, &ign);
	_cleanup_free_ char *etc = xasprintf("%s/etc/%s", ps->dir, name);
	rm_rf(etc, &ign);
	const char *sfx[] = {".log", ".log.1", ".log.2", ".log.3", ".fifo"};
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

int reconcile_remove(struct pstate *ps, char **names, bool anon_volumes,
		     struct orch_err *e)
{
	if (!names || !names[0])
		return 0;
	int r = 0;
	if (supervisor_alive(ps)) {
		json_t *req = json_pack("{s:s, s:o, s:b}", "op", "remove",
					"names", names_json(names), "force", 1);
		r = call_simple(ps, req, e);
		if (r < 0)
			return r;
	} else {
		/* No supervisor (and none could be started): kill directly. */
		for (size_t i = 0; names[i]; i++) {
			json_t *rec = state_container_find(ps, names[i]);
			struct orch_err ign = {0};
			if (rec && jstr(rec, "id"))
				rt_kill(jstr(rec, "id"), SIGKILL, &ign);
		}
	}
	json_t *ctrs = state_containers(ps);
	for (size_t k = 0; names[k]; k++) {
		size_t i;
		json_t *c;
		json_array_foreach(ctrs, i, c)
		{
			if (!streq(jstr(c, "name") ?: "", names[k]))
				continue;
			teardown_one(ps, c, true, anon_volumes, e);
			progress("Container", names[k], "Removed");
			json_array_remove(ctrs, i);
			break;
		}
	}
	r = pstate_save(ps, e);
	if (r < 0)
		return r;
	if (supervisor_alive(ps))
		call_simple(ps, json_pack("{s:s}", "op", "reload"), e);
	return e->code ? -e->code : 0;
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

/* Gives a fresh record its namespace, endpoints, ports, /etc files and
 * volumes.  What was done is recorded in rec as it goes, so that
 * teardown_one undoes exactly that. */
static int setup_one(struct pstate *ps, const struct project *m, json_t *rec,
		     struct orch_err *e)
{
	const char *name = jstr(rec, "name"), *id = jstr(rec, "id");
	json_t *spec = json_object_get(rec, "spec");
	const char *mode = jstr(rec, "network_mode");
	bool host = mode && streq(mode, "host");
	int r;
	if (host) {
		json_object_set_new(spec, "namespaces",
				    json_integer(RT_NS_DEFAULT & ~RT_NS_NET));
	} else if (mode && (startswith(mode, "service:"))) {
		json_t *other = find_rec_of_service(ps, mode + 8);
		if (!other || !jstr(other, "netns"))
			return err_set(e, ENOENT,
				       "%s: network_mode %s: that service has "
				       "no container",
				       name, mode);
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
	const char *gateway = NULL, *address = NULL, *first_net = NULL;
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
		struct netd_attach_req q = {
			.network = jstr(n, "network"),
			.container_id = id,
			.container_name = name,
			.service = jstr(rec, "service"),
			.aliases = aliases,
			.netns_path = jstr(rec, "netns"),
			.address = jstr(n, "ipv4_address"),
		};
		struct netd_endpoint ep = {0};
		r = netd_endpoint_attach(c, &q, &ep, e);
		if (r < 0)
			return err_wrap(e, "attaching %s to %s", name,
					q.network);
		json_object_set_new(n, "address", json_string(ep.address));
		json_object_set_new(n, "gateway", json_string(ep.gateway));
		json_object_set_new(n, "ifname", json_string(ep.ifname));
		netd_endpoint_clear(&ep);
		if (!gateway) {
			gateway = jstr(n, "gateway");
			address = jstr(n, "address");
			first_net = jstr(n, "network");
		}
	}

	/* Published ports go to the first network's address. */
	json_t *pubs = json_array();
	json_object_set_new(rec, "ports", pubs);
	json_t *p;
	json_array_foreach(json_object_get(rec, "port_specs"), i, p)
	{
		if (!first_net) {
			if (host)
				continue;
			return err_set(e, EINVAL,
				       "%s: ports need a network to publish to",
				       name);
		}
		struct netd_conn *c = NULL;
		r = netd_get(&c, e);
		if (r < 0)
			return r;
		unsigned hp = 0;
		r = pick_port(c, first_net, id, p, &hp, e);
		if (r < 0)
			return err_wrap(e, "publishing a port of %s", name);
		struct netd_port_req q = {
			.network = first_net,
			.container_id = id,
			.proto = jstr(p, "protocol"),
			.host_ip = jstr(p, "host_ip"),
			.host_port = hp,
			.container_port = (unsigned)jint(p, "target", 0),
		};
		r = netd_port_publish(c, &q, e);
		if (r < 0)
			return err_wrap(e, "publishing port %u of %s", hp, name);
		const char *hip = jstr(p, "host_ip");
		json_array_append_new(
			pubs, json_pack("{s:s, s:i, s:i, s:s}", "URL",
					hip && *hip ? hip : "0.0.0.0",
					"TargetPort", (int)jint(p, "target", 0),
					"PublishedPort", (int)hp, "Protocol",
					jstr(p, "protocol")));
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
		if (address)
			sb_printf(&sb, "%s\t%s %s\n", address, hostname, name);
		json_t *h;
		json_array_foreach(json_object_get(rec, "extra_hosts"), i, h)
			sb_printf(&sb, "%s\n", json_string_value(h));
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
		if (gateway)
			sb_printf(&sb, "nameserver %s\n", gateway);
		else {
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
		const char *files[][2] = {{hosts, "/etc/hosts"},
					  {hn, "/etc/hostname"},
					  {rc, "/etc/resolv.conf"}};
		for (size_t k = 0; k < ARRAY_SIZE(files); k++)
			json_array_append_new(
				mounts, json_pack("{s:s, s:s, s:s}", "type",
						  "bind", "source", files[k][0],
						  "target", files[k][1]));
	}

	/* Volumes: named ones by their data directory, anonymous ones
	 * created for this container. */
	json_t *anon = json_array();
	json_object_set_new(rec, "anon_volumes", anon);
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
			}
			continue;
		}
		if (!streq(type, "volume"))
			continue;
		_cleanup_free_ char *vname = NULL;
		if (jstr(mt, "volume"))
			vname = xstrdup(jstr(mt, "volume"));
		else {
			char rid[65];
			random_id(rid);
			vname = xstrdup(rid);
			char *lbl[] = {"com.docker.compose.project=", NULL};
			_cleanup_free_ char *l0 = xasprintf(
				"com.docker.compose.project=%s", ps->name);
			lbl[0] = l0;
			struct rt_volume_opts vo = {.labels = lbl};
			bool exists;
			r = rt_volume_create(vname, &vo, &exists, e);
			if (r < 0)
				return err_wrap(e, "%s: anonymous volume",
						name);
			json_array_append_new(anon, json_string(vname));
		}
		struct rt_volume *v = NULL;
		r = rt_volume_get(vname, &v, e);
		if (r < 0)
			return err_wrap(e, "%s: volume %s", name, vname);
		json_object_set_new(mt, "source", json_string(v->mountpoint));
		rt_volume_free(v);
	}
	(void)m;
	return 0;
}

/* ---- checks before any side effect ---------------------------------------- */

static bool parse_cidr4(const char *s, uint32_t *net, int *bits)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", s);
	char *slash = strchr(buf, '/');
	*bits = 32;
	if (slash) {
		*slash = '\0';
		*bits = atoi(slash + 1);
	}
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1 || *bits < 0 || *bits > 32)
		return false;
	uint32_t mask = *bits ? ~0u << (32 - *bits) : 0;
	*net = ntohl(a.s_addr) & mask;
	return true;
}

static bool cidr_overlap(const char *a, const char *b)
{
	uint32_t na, nb;
	int ba, bb;
	if (!parse_cidr4(a, &na, &ba) || !parse_cidr4(b, &nb, &bb))
		return false;
	int bits = ba < bb ? ba : bb;
	uint32_t mask = bits ? ~0u << (32 - bits) : 0;
	return (na & mask) == (nb & mask);
}

static const char *net_subnet(const struct network *n)
{
	return n->n_ipam > 0 ? n->ipam[0].subnet : NULL;
}

/* Networks: external ones exist, requested subnets are free. */
static int check_networks(const struct project *m, struct orch_err *e)
{
	bool need = false;
	for (size_t i = 0; i < m->n_networks; i++)
		if (m->networks[i].external || net_subnet(&m->networks[i]))
			need = true;
	if (!need)
		return 0;
	struct netd_conn *c = NULL;
	int r = netd_get(&c, e);
	if (r < 0)
		return r;
	struct netd_network *all = NULL;
	size_t n = 0;
	r = netd_network_list(c, NULL, &all, &n, e);
	if (r < 0)
		return err_wrap(e, "listing networks");
	for (size_t i = 0; i < m->n_networks && r == 0; i++) {
		const struct network *net = &m->networks[i];
		if (net->external) {
			bool found = false;
			for (size_t k = 0; k < n; k++)
				found |= streq(all[k].name, net->name);
			if (!found)
				r = err_set(e, ENOENT,
					    "%s:%d:%d: external network \"%s\" "
					    "does not exist",
					    net->pos.file, net->pos.line,
					    net->pos.col, net->name);
			continue;
		}
		const char *sub = net_subnet(net);
		if (!sub)
			continue;
		for (size_t k = 0; k < n && r == 0; k++) {
			if (streq(all[k].name, net->name) ||
			    !all[k].subnet || !cidr_overlap(sub, all[k].subnet))
				continue;
			r = err_set(e, EADDRINUSE,
				    "%s:%d:%d: subnet %s of network \"%s\" "
				    "overlaps %s of network \"%s\" (project "
				    "%s)",
				    net->ipam[0].pos.file, net->ipam[0].pos.line,
				    net->ipam[0].pos.col, sub, net->name,
				    all[k].subnet, all[k].name,
				    all[k].project ? all[k].project : "?");
		}
	}
	netd_networks_free(all, n);
	return r;
}

/* Container names must be free on the host: no other project holds
 * them. */
static int check_names(struct pstate *ps, json_t *new_recs,
		       struct orch_err *e)
{
	_cleanup_strv_ char **projects = NULL;
	int r = pstate_list(&projects, e);
	if (r < 0)
		return r;
	for (size_t i = 0; projects && projects[i]; i++) {
		if (streq(projects[i], ps->name))
			continue;
		_cleanup_free_ char *sf = xasprintf(
			"%s/projects/%s/state.json", orch_run(), projects[i]);
		json_auto_t *st = json_load_file(sf, 0, NULL);
		if (!st)
			continue;
		size_t k, j;
		json_t *a, *b;
		json_array_foreach(json_object_get(st, "containers"), k, a)
			json_array_foreach(new_recs, j, b)
		{
			if (streq(jstr(a, "name") ?: "", jstr(b, "name")))
				return err_set(e, EEXIST,
					       "container name \"%s\" is "
					       "already used by project %s",
					       jstr(b, "name"), projects[i]);
		}
	}
	return 0;
}

/* Whether a host port is taken by a listening socket here. */
static bool host_port_busy(const char *proto, const char *host_ip,
			   unsigned port)
{
	bool udp = proto && streq(proto, "udp");
	_cleanup_close_ int s = socket(
		AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	if (host_ip && *host_ip)
		inet_pton(AF_INET, host_ip, &sa.sin_addr);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	       errno == EADDRINUSE;
}

/* Published ports that this up will need are free: no listening socket
 * and no other project's mapping holds them (the project's own current
 * publications excepted).  netd's port.check needs an existing network,
 * so the mappings are read from its network list. */
static int check_ports(struct pstate *ps, json_t *new_recs, struct orch_err *e)
{
	struct netd_network *all = NULL;
	size_t n_all = 0;
	bool listed = false;
	size_t i, k;
	json_t *rec, *p;
	int r = 0;
	json_array_foreach(new_recs, i, rec)
	{
		json_array_foreach(json_object_get(rec, "port_specs"), k, p)
		{
			unsigned lo = (unsigned)jint(p, "published", 0);
			if (lo == 0 || jint(p, "published_end", lo) != lo)
				continue;
			const char *proto = jstr(p, "protocol");
			bool ours = false;
			size_t a, b;
			json_t *c, *q;
			json_array_foreach(state_containers(ps), a, c)
				json_array_foreach(json_object_get(c, "ports"),
						   b, q)
			{
				if (jint(q, "PublishedPort", 0) == lo &&
				    streq(jstr(q, "Protocol") ?: "", proto))
					ours = true;
			}
			if (ours)
				continue;
			if (!listed) {
				struct netd_conn *nc = NULL;
				r = netd_get(&nc, e);
				if (r == 0)
					r = netd_network_list(nc, NULL, &all,
							      &n_all, e);
				if (r < 0)
					goto out;
				listed = true;
			}
			for (size_t x = 0; x < n_all; x++)
				for (size_t y = 0; y < all[x].n_ports; y++) {
					struct netd_port *hp = &all[x].ports[y];
					if (hp->host_port != lo ||
					    !streq(hp->proto ?: "tcp", proto))
						continue;
					r = err_set(e, EADDRINUSE,
						    "service \"%s\": host port "
						    "%u/%s is already published "
						    "by network %s (project %s)",
						    jstr(rec, "service"), lo,
						    proto, all[x].name,
						    all[x].project ?: "?");
					goto out;
				}
			if (host_port_busy(proto, jstr(p, "host_ip"), lo)) {
				r = err_set(e, EADDRINUSE,
					    "service \"%s\": host port %u/%s is "
					    "already in use on this host",
					    jstr(rec, "service"), lo, proto);
				goto out;
			}
		}
	}
out:
	netd_networks_free(all, n_all);
	return r;
}

/* ---- up --------------------------------------------------------------------- */

struct up_ctx {
	struct pstate *ps;
	struct project *m;
	json_t *created_nets;	/* names created by this up */
	json_t *created_vols;	/* names created by this up */
	char **created_ctrs;	/* containers made by this up */
	bool project_was_empty;
};

static int ensure_networks(struct up_ctx *u, struct orch_err *e)
{
	json_t *nets = json_object_get(u->ps->state, "networks");
	if (!json_is_array(nets)) {
		nets = json_array();
		json_object_set_new(u->ps->state, "networks", nets);
	}
	for (size_t i = 0; i < u->m->n_networks; i++) {
		const struct network *n = &u->m->networks[i];
		bool used = false;
		for (size_t s = 0; s < u->m->n_services && !used; s++) {
			const struct service *sv = &u->m->services[s];
			if (sv->network_mode)
				continue;
			for (size_t k = 0; k < sv->n_networks; k++)
				used |= streq(sv->networks[k].name, n->key);
		}
		if (!used || n->external)
			continue;
		bool known = false;
		size_t k;
		json_t *j;
		json_array_foreach(nets, k, j)
			known |= streq(jstr(j, "name") ?: "", n->name);
		if (known)
			continue;
		struct netd_conn *c = NULL;
		int r = netd_get(&c, e);
		if (r < 0)
			return r;
		_cleanup_strv_ char **labels = NULL;
		_cleanup_free_ char *l0 =
			xasprintf("com.docker.compose.project=%s", u->m->name);
		_cleanup_free_ char *l1 =
			xasprintf("com.docker.compose.network=%s", n->key);
		strv_push(&labels, l0);
		strv_push(&labels, l1);
		const struct m_kv *icc = NULL;
		for (size_t d = 0; d < n->driver_opts.n; d++)
			if (streq(n->driver_opts.v[d].key,
				  "com.docker.network.bridge.enable_icc"))
				icc = &n->driver_opts.v[d];
		struct netd_network_req q = {
			.name = n->name,
			.project = u->m->name,
			.subnet = net_subnet(n),
			.gateway = n->n_ipam ? n->ipam[0].gateway : NULL,
			.internal = n->internal,
			.icc = icc && icc->value && streq(icc->value, "true"),
			.labels = labels,
		};
		struct netd_network out = {0};
		r = netd_network_create(c, &q, &out, e);
		if (r < 0)
			return err_wrap(e, "creating network %s", n->name);
		json_array_append_new(
			nets, json_pack("{s:s, s:s, s:s?, s:s?}", "key", n->key,
					"name", n->name, "subnet", out.subnet,
					"gateway", out.gateway));
		json_array_append_new(u->created_nets, json_string(n->name));
		netd_network_clear(&out);
		progress("Network", n->name, "Created");
	}
	return 0;
}

static int ensure_volumes(struct up_ctx *u, json_t *new_recs,
			  struct orch_err *e)
{
	json_t *vols = json_object_get(u->ps->state, "volumes");
	if (!json_is_array(vols)) {
		vols = json_array();
		json_object_set_new(u->ps->state, "volumes", vols);
	}
	size_t i, k;
	json_t *rec, *key;
	json_array_foreach(new_recs, i, rec)
		json_array_foreach(json_object_get(rec, "named_volumes"), k, key)
	{
		const struct volume *v =
			project_volume(u->m, json_string_value(key));
		if (!v || v->external)
			continue;
		bool known = false;
		size_t j;
		json_t *x;
		json_array_foreach(vols, j, x)
			known |= streq(jstr(x, "name") ?: "", v->name);
		if (known)
			continue;
		_cleanup_free_ char *l0 =
			xasprintf("com.docker.compose.project=%s", u->m->name);
		_cleanup_free_ char *l1 =
			xasprintf("com.docker.compose.volume=%s", v->key);
		char *labels[] = {l0, l1, NULL};
		struct rt_volume_opts o = {.labels = labels};
		for (size_t d = 0; d < v->driver_opts.n; d++)
			if (streq(v->driver_opts.v[d].key, "size") &&
			    v->driver_opts.v[d].value)
				parse_bytes(v->driver_opts.v[d].value,
					    &o.size_limit);
		bool exists = false;
		int r = rt_volume_create(v->name, &o, &exists, e);
		if (r < 0)
			return err_wrap(e, "creating volume %s", v->name);
		json_array_append_new(vols,
				      json_pack("{s:s, s:s}", "key", v->key,
						"name", v->name));
		if (!exists) {
			json_array_append_new(u->created_vols,
					      json_string(v->name));
			progress("Volume", v->name, "Created");
		}
	}
	return 0;
}

static void link_pairs(const struct project *m, const char *net_key,
		       struct netd_pair **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *a = &m->services[i];
		bool on = false;
		for (size_t k = 0; k < a->n_networks; k++)
			on |= streq(a->networks[k].name, net_key);
		if (!on)
			continue;
		char **targets = NULL;
		for (size_t k = 0; k < a->n_depends_on; k++)
			strv_push(&targets, a->depends_on[k].service);
		for (size_t k = 0; a->links && a->links[k]; k++) {
			_cleanup_free_ char *t = xstrdup(a->links[k]);
			char *colon = strchr(t, ':');
			if (colon)
				*colon = '\0';
			strv_push(&targets, t);
		}
		for (size_t k = 0; targets && targets[k]; k++) {
			const struct service *b = project_service(m, targets[k]);
			bool bon = false;
			for (size_t j = 0; b && j < b->n_networks; j++)
				bon |= streq(b->networks[j].name, net_key);
			if (!bon)
				continue;
			if (*n == cap) {
				cap = cap ? cap * 2 : 8;
				*out = xrealloc(*out, cap * sizeof(**out));
			}
			(*out)[*n].from = a->name;
			(*out)[*n].to = b->name;
			(*n)++;
		}
		strv_free(targets);
	}
}

static int set_links(struct up_ctx *u, struct orch_err *e)
{
	json_t *nets = json_object_get(u->ps->state, "networks");
	size_t i;
	json_t *n;
	json_array_foreach(nets, i, n)
	{
		struct netd_pair *pairs;
		size_t np;
		link_pairs(u->m, jstr(n, "key"), &pairs, &np);
		struct netd_conn *c = NULL;
		int r = netd_get(&c, e);
		if (r == 0)
			r = netd_links_set(c, jstr(n, "name"), pairs, np, e);
		free(pairs);
		if (r < 0)
			return err_wrap(e, "setting links on %s", jstr(n, "name"));
	}
	return 0;
}

/* Waits for the depends_on conditions of service s to hold. */
static int wait_deps(struct up_ctx *u, const struct service *s,
		     struct orch_err *e)
{
	for (size_t d = 0; d < s->n_depends_on; d++) {
		const struct m_dep *dep = &s->depends_on[d];
		_cleanup_strv_ char **names = NULL;
		char *svc[] = {dep->service, NULL};
		names = containers_of(u->ps, svc, NULL);
		if (!names[0])
			continue;
		for (;;) {
			json_t *st = NULL;
			int r = status_get(u->ps, &st, e);
			if (r < 0)
				return r;
			bool done = true;
			for (size_t k = 0; names[k] && r == 0; k++) {
				json_t *c = status_find(st, names[k]);
				const char *state = c ? jstr(c, "state") : "";
				const char *health = c ? jstr(c, "health") : "";
				int code = (int)jint(c, "exit_code", 0);
				bool exited = streq(state, "exited");
				switch (dep->condition) {
				case M_DEP_STARTED:
					break;
				case M_DEP_HEALTHY:
					if (streq(health, "unhealthy") ||
					    exited)
						r = err_set(
							e, EIO,
							"dependency failed to "
							"start: container %s "
							"is %s",
							names[k],
							exited ? "exited"
							       : "unhealthy");
					else if (!streq(health, "healthy") &&
						 *health)
						done = false;
					else if (!*health)
						r = err_set(
							e, EINVAL,
							"service %s depends on "
							"%s being healthy, "
							"which has no health "
							"check",
							s->name, dep->service);
					break;
				case M_DEP_COMPLETED:
					if (exited && code != 0)
						r = err_set(
							e, EIO,
							"service %s didn't "
							"complete successfully:"
							" exit %d",
							dep->service, code);
					else if (!exited)
						done = false;
					break;
				}
			}
			json_decref(st);
			if (r < 0)
				return r;
			if (done)
				break;
			usleep(20000);
		}
		if (dep->condition == M_DEP_HEALTHY)
			for (size_t k = 0; names[k]; k++)
				progress("Container", names[k], "Healthy");
	}
	return 0;
}

int reconcile_wait(struct pstate *ps, char **services, int64_t timeout_ms,
		   struct orch_err *e)
{
	_cleanup_strv_ char **names = containers_of(ps, services, NULL);
	int64_t deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
	for (;;) {
		json_t *st = NULL;
		int r = status_get(ps, &st, e);
		if (r < 0)
			return r;
		bool done = true;
		for (size_t k = 0; names[k] && r == 0; k++) {
			json_t *c = status_find(st, names[k]);
			const char *state = c ? jstr(c, "state") : "";
			const char *health = c ? jstr(c, "health") : "";
			int code = (int)jint(c, "exit_code", 0);
			if (streq(state, "exited")) {
				if (code != 0)
					r = err_set(e, EIO,
						    "container %s exited (%d)",
						    names[k], code);
			} else if (streq(health, "unhealthy"))
				r = err_set(e, EIO, "container %s is unhealthy",
					    names[k]);
			else if (!streq(state, "running") ||
				 (*health && !streq(health, "healthy")))
				done = false;
		}
		json_decref(st);
		if (r < 0)
			return r;
		if (done)
			return 0;
		if (deadline && mono_ms() > deadline)
			return err_set(e, ETIMEDOUT,
				       "timed out waiting for the project to be "
				       "running and healthy");
		usleep(20000);
	}
}

static void rollback(struct up_ctx *u)
{
	struct orch_err ign = {0};
	if (u->created_ctrs && u->created_ctrs[0]) {
		if (supervisor_alive(u->ps))
			reconcile_stop(u->ps, u->created_ctrs, 0, "stop", &ign);
		reconcile_remove(u->ps, u->created_ctrs, true, &ign);
	}
	size_t i;
	json_t *v;
	json_array_foreach(u->created_vols, i, v)
		rt_volume_remove(json_string_value(v), &ign);
	json_t *nets = json_object_get(u->ps->state, "networks");
	json_array_foreach(u->created_nets, i, v)
	{
		struct netd_conn *c = NULL;
		if (netd_get(&c, &ign) == 0)
			netd_network_remove(c, json_string_value(v), NULL, &ign);
		size_t k;
		json_t *n;
		json_array_foreach(nets, k, n)
		{
			if (streq(jstr(n, "name") ?: "", json_string_value(v))) {
				json_array_remove(nets, k);
				break;
			}
		}
	}
	if (u->project_was_empty &&
	    json_array_size(state_containers(u->ps)) == 0) {
		if (supervisor_alive(u->ps))
			call_simple(u->ps, json_pack("{s:s}", "op", "exit"),
				    &ign);
		pstate_remove(u->ps, &ign);
	} else
		pstate_save(u->ps, &ign);
}

static int apply_scale(struct project *m, char **scale, int64_t *replicas,
		       struct orch_err *e)
{
	for (size_t i = 0; i < m->n_services; i++)
		replicas[i] = service_replicas(&m->services[i]);
	for (size_t k = 0; scale && scale[k]; k++) {
		_cleanup_free_ char *s = xstrdup(scale[k]);
		char *eq = strchr(s, '=');
		if (!eq)
			return err_set(e, EINVAL, "--scale %s: use SERVICE=N",
				       scale[k]);
		*eq = '\0';
		char *end;
		long n = strtol(eq + 1, &end, 10);
		if (*end || n < 0 || n > 10000)
			return err_set(e, EINVAL, "--scale %s: bad number",
				       scale[k]);
		bool found = false;
		for (size_t i = 0; i < m->n_services; i++)
			if (streq(m->services[i].name, s)) {
				replicas[i] = n;
				found = true;
			}
		if (!found)
			return err_set(e, ENOENT, "--scale: no such service: %s",
				       s);
	}
	return 0;
}

static json_t *instantiate(const struct project *m, const struct service *s,
			   json_t *tmpl, int number)
{
	json_t *rec = json_deep_copy(tmpl);
	char id[65];
	random_id(id);
	_cleanup_free_ char *name =
		s->container_name && number == 1
			? xstrdup(s->container_name)
			: xasprintf("%s-%s-%d", m->name, s->name, number);
	json_object_set_new(rec, "id", json_string(id));
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "number", json_integer(number));
	json_object_set_new(json_object_get(rec, "spec"), "upper_dir",
			    json_sprintf("%s/containers/%s", orch_root(), id));
	json_object_set_new(rec, "created", json_integer(time(NULL)));
	json_t *lb = json_object_get(rec, "labels");
	_cleanup_free_ char *num = xasprintf("%d", number);
	json_object_set_new(lb, "com.docker.compose.container-number",
			    json_string(num));
	return rec;
}

int reconcile_up(struct project *m, const struct up_opts *o,
		 struct pstate *ps, struct orch_err *e)
{
	struct up_ctx u = {.ps = ps, .m = m};
	u.project_was_empty = json_array_size(state_containers(ps)) == 0;
	_cleanup_free_ int64_t *replicas =
		xcalloc(m->n_services + 1, sizeof(int64_t));
	int r = apply_scale(m, o->scale, replicas, e);
	if (r < 0)
		return r;

	/* Templates: images and commands are checked here, before anything
	 * happens; a service that fails only matters if it is to be
	 * created. */
	json_auto_t *tmpls = json_object();
	json_auto_t *tmpl_errs = json_object();
	_cleanup_free_ struct plan_service *ps_svcs =
		xcalloc(m->n_services + 1, sizeof(*ps_svcs));
	char ***deps = xcalloc(m->n_services + 1, sizeof(char **));
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		json_t *t = NULL;
		struct orch_err te = {0};
		if (record_template(m, s, &t, &te) < 0)
			json_object_set_new(tmpl_errs, s->name,
					    json_string(te.msg));
		else
			json_object_set_new(tmpls, s->name, t);
		for (size_t k = 0; k < s->n_depends_on; k++)
			strv_push(&deps[i], s->depends_on[k].service);
		for (size_t k = 0; s->links && s->links[k]; k++) {
			_cleanup_free_ char *l = xstrdup(s->links[k]);
			char *colon = strchr(l, ':');
			if (colon)
				*colon = '\0';
			if (!strv_contains(deps[i], l))
				strv_push(&deps[i], l);
		}
		if (s->network_mode && startswith(s->network_mode, "service:") &&
		    !strv_contains(deps[i], s->network_mode + 8))
			strv_push(&deps[i], s->network_mode + 8);
		ps_svcs[i] = (struct plan_service){
			.name = s->name,
			.deps = deps[i],
			.scale = (int)replicas[i],
			.hash = t ? jstr(t, "hash") : NULL,
		};
	}
	struct plan plan = {0};
	_cleanup_free_ struct plan_observed *obs = NULL;
	json_t *status = NULL;
	json_auto_t *new_recs = json_array();

	/* What exists. */
	size_t n_obs = json_array_size(state_containers(ps));
	obs = xcalloc(n_obs + 1, sizeof(*obs));
	if (n_obs) {
		r = status_get(ps, &status, e);
		if (r < 0)
			goto out;
	}
	{
		size_t i;
		json_t *c;
		json_array_foreach(state_containers(ps), i, c)
		{
			json_t *st = status ? status_find(status, jstr(c, "name"))
					    : NULL;
			obs[i] = (struct plan_observed){
				.name = jstr(c, "name"),
				.service = jstr(c, "service") ?: "",
				.number = (int)jint(c, "number", 1),
				.hash = jstr(c, "hash"),
				.running = st && streq(jstr(st, "state") ?: "",
						       "running"),
			};
		}
	}
	struct plan_opts po = {
		.force_recreate = o->force_recreate,
		.no_recreate = o->no_recreate,
		.no_deps = o->no_deps,
		.remove_orphans = o->remove_orphans,
		.services = o->services,
	};
	r = plan_compute(ps_svcs, m->n_services, obs, n_obs, &po, &plan, e);
	if (r < 0)
		goto out;

	/* The records this up will create, then every machine check. */
	for (size_t i = 0; i < plan.n; i++) {
		struct plan_action *a = &plan.actions[i];
		if (a->op != PLAN_CREATE && a->op != PLAN_RECREATE)
			continue;
		const char *terr = jstr(tmpl_errs, a->service);
		if (terr) {
			/* Every failing service is named, not only the
			 * first. */
			const char *k;
			json_t *v;
			json_object_foreach(tmpl_errs, k, v)
			{
				if (v != json_object_get(tmpl_errs, a->service))
					fprintf(stderr, "%s\n",
						json_string_value(v));
			}
			r = err_set(e, ENOENT, "%s", terr);
			goto out;
		}
		const struct service *s = project_service(m, a->service);
		json_t *rec = instantiate(
			m, s, json_object_get(tmpls, a->service), a->number);
		json_array_append_new(new_recs, rec);
	}
	if (!o->remove_orphans) {
		for (size_t i = 0; i < n_obs; i++)
			if (!project_service(m, obs[i].service) &&
			    !(m->disabled &&
			      ({
				      bool d = false;
				      for (size_t k = 0; k < m->n_disabled; k++)
					      d |= streq(m->disabled[k].name,
							 obs[i].service);
				      d;
			      })))
				log_warn("found orphan container %s for this "
					 "project; run with --remove-orphans to "
					 "remove it",
					 obs[i].name);
	}
	if ((r = check_names(ps, new_recs, e)) < 0 ||
	    (r = check_networks(m, e)) < 0 ||
	    (r = check_ports(ps, new_recs, e)) < 0)
		goto out;
	for (size_t i = 0; i < m->n_volumes; i++) {
		const struct volume *v = &m->volumes[i];
		struct rt_volume *rv = NULL;
		if (!v->external)
			continue;
		if (rt_volume_get(v->name, &rv, e) < 0) {
			r = err_set(e, ENOENT,
				    "%s:%d:%d: external volume \"%s\" does "
				    "not exist",
				    v->pos.file, v->pos.line, v->pos.col,
				    v->name);
			goto out;
		}
		rt_volume_free(rv);
	}

	/* Side effects from here on; failures roll back. */
	u.created_nets = json_array();
	u.created_vols = json_array();
	pstate_claim(ps, getuid(), m->working_dir, m->files);
	if ((r = pstate_save(ps, e)) < 0)
		goto fail;
	if ((r = ensure_networks(&u, e)) < 0 ||
	    (r = ensure_volumes(&u, new_recs, e)) < 0)
		goto fail;
	{
		/* Removals and the old halves of recreations. */
		_cleanup_strv_ char **gone = xcalloc(1, sizeof(char *));
		for (size_t i = 0; i < plan.n; i++)
			if (plan.actions[i].op == PLAN_REMOVE ||
			    plan.actions[i].op == PLAN_RECREATE)
				strv_push(&gone, plan.actions[i].name);
		if (gone[0]) {
			r = reconcile_stop(ps, gone, o->timeout_ms, "stop", e);
			if (r == 0)
				r = reconcile_remove(ps, gone, true, e);
			if (r < 0)
				goto fail;
		}
	}
	{
		size_t i;
		json_t *rec;
		json_array_foreach(new_recs, i, rec)
		{
			json_array_append(state_containers(ps), rec);
			strv_push(&u.created_ctrs, jstr(rec, "name"));
			r = setup_one(ps, m, rec, e);
			if (r < 0)
				goto fail;
			progress("Container", jstr(rec, "name"), "Created");
		}
	}
	if ((r = set_links(&u, e)) < 0)
		goto fail;
	if ((r = pstate_save(ps, e)) < 0)
		goto fail;
	if (o->no_start)
		goto out;
	if ((r = supervisor_ensure(ps, e)) < 0 ||
	    (r = call_simple(ps, json_pack("{s:s}", "op", "reload"), e)) < 0)
		goto fail;

	/* Start, one dependency level after the other. */
	for (int l = 0; l < plan.levels; l++) {
		_cleanup_strv_ char **names = xcalloc(1, sizeof(char *));
		for (size_t i = 0; i < plan.n; i++) {
			struct plan_action *a = &plan.actions[i];
			if (a->level != l || a->op == PLAN_REMOVE ||
			    a->op == PLAN_KEEP)
				continue;
			const struct service *s = project_service(m, a->service);
			if (a->number == 1 && (r = wait_deps(&u, s, e)) < 0)
				goto fail;
			_cleanup_free_ char *name =
				s->container_name && a->number == 1
					? xstrdup(s->container_name)
					: xasprintf("%s-%s-%d", m->name,
						    s->name, a->number);
			strv_push(&names, name);
		}
		if (!names[0])
			continue;
		json_t *req = json_pack("{s:s, s:o}", "op", "start", "names",
					names_json(names));
		if ((r = call_simple(ps, req, e)) < 0)
			goto fail;
		for (size_t k = 0; names[k]; k++)
			progress("Container", names[k], "Started");
	}
	if (o->wait) {
		r = reconcile_wait(ps, o->services, o->wait_timeout_ms, e);
		if (r < 0)
			goto out; /* started fine; only not healthy */
	}
	goto out;
fail:
	{
		struct orch_err saved = *e;
		rollback(&u);
		*e = saved;
	}
out:
	plan_free(&plan);
	json_decref(status);
	json_decref(u.created_nets);
	json_decref(u.created_vols);
	strv_free(u.created_ctrs);
	for (size_t i = 0; i < m->n_services; i++)
		strv_free(deps[i]);
	free(deps);
	return r;
}

/* ---- down ------------------------------------------------------------------ */

static void wait_pid_exit(pid_t pid, int timeout_ms)
{
	int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	RETRY_EINTR(poll(&p, 1, timeout_ms));
	close(fd);
}

int reconcile_down(struct pstate *ps, const struct down_opts *o,
		   struct orch_err *e)
{
	struct orch_err first = {0};
	_cleanup_strv_ char **names = containers_of(ps, NULL, NULL);
	if (names[0]) {
		struct orch_err se = {0};
		if (supervisor_ensure(ps, &se) == 0) {
			if (reconcile_stop(ps, names, o->timeout_ms, "stop",
					   &se) < 0)
				log_warn("%s", se.msg);
			for (size_t i = 0; names[i]; i++)
				progress("Container", names[i], "Stopped");
		} else
			log_warn("%s", se.msg);
	}
	/* Endpoints on our own networks go with the networks. */
	json_t *ctrs = state_containers(ps);
	if (supervisor_alive(ps)) {
		json_t *req = json_pack("{s:s, s:o, s:b}", "op", "remove",
					"names", names_json(names), "force", 1);
		struct orch_err se = {0};
		if (call_simple(ps, req, &se) < 0)
			log_warn("%s", se.msg);
	}
	size_t i;
	json_t *c;
	json_array_foreach(ctrs, i, c)
	{
		struct orch_err ign = {0};
		if (!supervisor_alive(ps) && jstr(c, "id"))
			rt_kill(jstr(c, "id"), SIGKILL, &ign);
		teardown_one(ps, c, false, true, &ign);
		if (ign.code && !first.code)
			first = ign;
		progress("Container", jstr(c, "name"), "Removed");
	}
	json_array_clear(ctrs);
	/* Namespaces a crash left without a record. */
	_cleanup_free_ char *nsdir = pstate_path(ps, "netns");
	_cleanup_strv_ char **left = NULL;
	{
		DIR *d = opendir(nsdir);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.')
				strv_push(&left, de->d_name);
		if (d)
			closedir(d);
	}
	for (size_t k = 0; left && left[k]; k++) {
		_cleanup_free_ char *p = path_join(nsdir, left[k]);
		netns_remove(p);
	}
	/* Stop the supervisor before its directory goes. */
	if (supervisor_alive(ps)) {
		_cleanup_free_ char *pidf = pstate_path(ps, "supervisor.pid");
		_cleanup_free_ char *txt = NULL;
		struct orch_err ign = {0};
		read_file(pidf, &txt, NULL, &ign);
		call_simple(ps, json_pack("{s:s}", "op", "exit"), &ign);
		if (txt && atoi(txt) > 0)
			wait_pid_exit(atoi(txt), 2000);
	}
	json_t *nets = json_object_get(ps->state, "networks");
	json_t *n;
	json_array_foreach(nets, i, n)
	{
		struct netd_conn *nc = NULL;
		struct orch_err ne = {0};
		if (netd_get(&nc, &ne) < 0 ||
		    netd_network_remove(nc, jstr(n, "name"), NULL, &ne) < 0) {
			if (!first.code)
				first = ne;
			continue;
		}
		progress("Network", jstr(n, "name"), "Removed");
	}
	if (o->volumes) {
		json_t *v;
		json_array_foreach(json_object_get(ps->state, "volumes"), i, v)
		{
			struct orch_err ve = {0};
			if (rt_volume_remove(jstr(v, "name"), &ve) < 0 &&
			    ve.code != ENOENT && !first.code)
				first = ve;
			else
				progress("Volume", jstr(v, "name"), "Removed");
		}
	}
	if (first.code) {
		/* Keep the state so that the next down can finish. */
		json_object_set_new(ps->state, "containers", json_array());
		pstate_save(ps, e);
		*e = first;
		return -first.code;
	}
	return pstate_remove(ps, e);
}

/* ---- run ------------------------------------------------------------------- */

int reconcile_oneoff(struct pstate *ps, struct project *m,
		     const struct service *s, const struct oneoff_opts *o,
		     json_t **out, struct orch_err *e)
{
	json_t *tmpl = NULL;
	int r = record_template(m, s, &tmpl, e);
	if (r < 0)
		return r;
	char id[65];
	random_id(id);
	_cleanup_free_ char *name =
		o->name ? xstrdup(o->name)
			: xasprintf("%s-%s-run-%.12s", m->name, s->name, id);
	json_t *rec = tmpl;
	json_object_set_new(rec, "id", json_string(id));
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "number", json_integer(0));
	json_object_set_new(json_object_get(rec, "spec"), "upper_dir",
			    json_sprintf("%s/containers/%s", orch_root(), id));
	json_object_set_new(rec, "oneoff", json_true());
	json_object_set_new(rec, "restart", json_string("no"));
	json_object_set_new(rec, "created", json_integer(time(NULL)));
	json_object_set_new(json_object_get(rec, "labels"),
			    "com.docker.compose.oneoff", json_string("True"));
	if (!o->service_ports)
		json_object_set_new(rec, "port_specs", json_array());
	json_t *spec = json_object_get(rec, "spec");
	if (o->entrypoint || o->cmd) {
		json_t *argv = json_array();
		if (o->entrypoint)
			json_array_append_new(argv, json_string(o->entrypoint));
		else if (!o->cmd) {
			json_decref(argv);
			argv = NULL;
		}
		for (size_t i = 0; argv && o->cmd && o->cmd[i]; i++)
			json_array_append_new(argv, json_string(o->cmd[i]));
		if (argv && !o->entrypoint && s->entrypoint) {
			json_t *full = json_array();
			for (size_t i = 0; s->entrypoint[i]; i++)
				json_array_append_new(
					full, json_string(s->entrypoint[i]));
			json_array_extend(full, argv);
			json_decref(argv);
			argv = full;
		}
		if (argv)
			json_object_set_new(spec, "argv", argv);
	}
	json_t *env = json_object_get(spec, "env");
	for (size_t i = 0; o->env && o->env[i]; i++)
		json_array_append_new(env, json_string(o->env[i]));
	if (o->workdir)
		json_object_set_new(spec, "workdir", json_string(o->workdir));
	if (o->user) {
		/* Only numeric ids here; names are resolved by the image's
		 * files in record_template. */
		char *colon = strchr(o->user, ':');
		json_object_set_new(spec, "uid",
				    json_integer(atoi(o->user)));
		json_object_set_new(spec, "gid",
				    json_integer(colon ? atoi(colon + 1) : 0));
	}
	json_array_append(state_containers(ps), rec);
	r = setup_one(ps, m, rec, e);
	if (r == 0)
		r = pstate_save(ps, e);
	if (r < 0) {
		struct orch_err ign = {0};
		char *names[] = {name, NULL};
		reconcile_remove(ps, names, true, &ign);
		json_decref(rec);
		return r;
	}
	*out = rec;
	json_decref(rec); /* the state holds it */
	return 0;
}
