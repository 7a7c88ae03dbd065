/* The checks `up` makes on machine state before its first side effect:
 * external networks exist, requested subnets and published ports are
 * free, container names are not held by another project.  A failure
 * here means nothing was created. */
#include "orchestrator/engine/engine.h"
#include "netd/netd.h"
#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

/* ---- checks before any side effect ---------------------------------------- */

/* Networks: external ones exist; netd could create each of the others
 * (subnet free of other networks and of the host's routes, gateway in it,
 * quota).  That the project's own subnets do not overlap each other is
 * checked with the file. */
/* What a network's addresses cannot be, refused rather than ignored: two
 * ipam pools of one family (a network has one subnet of each), a pool of
 * a family the network does not have, a service's fixed address of such
 * a family. */
static int network_supported(const struct project *m, const struct network *n,
			     struct orch_err *e)
{
	bool seen[2] = {false, false};
	for (size_t i = 0; i < n->n_ipam; i++) {
		const struct m_ipam_pool *p = &n->ipam[i];
		bool v6 = p->subnet && strchr(p->subnet, ':');
		if (p->subnet && (v6 ? !n->enable_ipv6 : n->ipv4_off))
			return err_set(e, EINVAL,
				       "%s:%d:%d: network \"%s\": subnet %s "
				       "is IPv%d but the network has %s",
				       p->pos.file, p->pos.line, p->pos.col,
				       n->key, p->subnet, v6 ? 6 : 4,
				       v6 ? "no IPv6 (set enable_ipv6: true)"
					  : "enable_ipv4: false");
		if (p->subnet && seen[v6])
			return err_set(e, ENOTSUP,
				       "%s:%d:%d: network \"%s\": a second "
				       "IPv%d ipam pool is not supported: a "
				       "network has one subnet of each family",
				       p->pos.file, p->pos.line, p->pos.col,
				       n->key, v6 ? 6 : 4);
		if (p->subnet)
			seen[v6] = true;
	}
	for (size_t i = 0; i < m->n_services; i++)
		for (size_t k = 0; k < m->services[i].n_networks; k++) {
			const struct m_svc_net *sn = &m->services[i].networks[k];
			if (!streq(sn->name, n->key))
				continue;
			bool bad6 = sn->ipv6_address && !n->enable_ipv6;
			if (bad6 || (sn->ipv4_address && n->ipv4_off))
				return err_set(
				    e, EINVAL,
				    "%s:%d:%d: service \"%s\": %s on network "
				    "\"%s\", which has %s",
				    sn->pos.file, sn->pos.line, sn->pos.col,
				    m->services[i].name,
				    bad6 ? "ipv6_address" : "ipv4_address",
				    n->key,
				    bad6 ? "no IPv6 (set enable_ipv6: true)"
					 : "enable_ipv4: false");
		}
	return 0;
}

/* What only the host's root may do, refused to a rootless orch before
 * anything is made, at the place it is asked for. */
int check_rootless(const struct project *m, struct orch_err *e)
{
	if (!rootless())
		return 0;
	static const char *const keys[] = {"privileged", "devices",
					   "device_cgroup_rules",
					   "cgroup_parent"};
	static const char *const why[] = {
	    "the host's devices and kernel settings",
	    "device nodes (a user namespace may not make them)",
	    "a device cgroup (only the host's root may set one)",
	    "a cgroup outside the one netd hands you"};
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		bool set[] = {s->privileged, s->devices && s->devices[0],
			      s->device_cgroup_rules &&
				  s->device_cgroup_rules[0],
			      s->cgroup_parent != NULL};
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			if (!set[k])
				continue;
			const struct m_pos *p = service_key_pos(s, keys[k]);
			if (!p)
				p = &s->pos;
			return err_set(e, EPERM,
				       "%s:%d:%d: service \"%s\": %s needs root "
				       "(%s): orch runs without root here",
				       p->file, p->line, p->col, s->name,
				       keys[k], why[k]);
		}
	}
	for (size_t i = 0; i < m->n_volumes; i++) {
		const struct volume *v = &m->volumes[i];
		for (size_t d = 0; d < v->driver_opts.n && !v->external; d++)
			if (streq(v->driver_opts.v[d].key, "size"))
				return err_set(
				    e, EPERM,
				    "%s:%d:%d: volume \"%s\": a size limit "
				    "needs a loop device, which only root may "
				    "attach: ask the administrator, or drop "
				    "driver_opts.size",
				    v->pos.file, v->pos.line, v->pos.col,
				    v->key);
	}
	return 0;
}

/* Whether up makes a container of s (one of new_recs). */
static bool service_made(const struct service *s, json_t *new_recs)
{
	size_t k;
	json_t *rec;
	json_array_foreach(new_recs, k, rec)
		if (streq(jstr(rec, "service") ?: "", s->name))
			return true;
	return false;
}

int check_cpusets(const struct project *m, json_t *new_recs,
		  struct orch_err *e)
{
	char online[512] = "";
	uint64_t have[CPUSET_WORDS], want[CPUSET_WORDS];
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		if (!s->cpuset || !service_made(s, new_recs) ||
		    !cpulist_parse(s->cpuset, want, CPUSET_WORDS * 64))
			continue;
		/* The machine's CPUs, read at the first cpuset. */
		if (!*online) {
			_cleanup_fclose_ FILE *f =
			    fopen("/sys/devices/system/cpu/online", "re");
			if (!f || !fgets(online, sizeof(online), f) ||
			    !cpulist_parse(online, have, CPUSET_WORDS * 64))
				return 0; /* the kernel says it at the write */
			online[strcspn(online, "\n")] = '\0';
		}
		for (size_t w = 0; w < CPUSET_WORDS; w++)
			if (want[w] & ~have[w]) {
				const struct m_pos *p =
				    service_key_pos(s, "cpuset");
				return err_set(e, EINVAL,
					       "%s:%d:%d: service \"%s\": "
					       "cpuset \"%s\": this machine's "
					       "CPUs are %s",
					       p->file, p->line, p->col,
					       s->name, s->cpuset, online);
			}
	}
	return 0;
}

int check_networks(const struct project *m, struct orch_err *e)
{
	int r = 0;
	struct netd_conn *c = NULL;
	struct netd_network *all = NULL;
	size_t n = 0;
	for (size_t i = 0; i < m->n_networks && r == 0; i++) {
		const struct network *net = &m->networks[i];
		if (!net->external && !network_used(m, net->key))
			continue;
		if (!net->external && (r = network_supported(m, net, e)) < 0)
			break;
		if (!c && (r = netd_get(&c, e)) < 0)
			return r;
		if (!net->external) {
			_cleanup_network_req_ struct netd_network_req q;
			network_req(m, net, &q);
			q.check = true;
			if (netd_network_create(c, &q, NULL, e) < 0) {
				struct orch_err ne = *e;
				/* The implicit default network is placed at
				 * its first service; a model built by hand
				 * may have no place at all. */
				if (net->pos.file)
					r = err_set(e, ne.code,
						    "%s:%d:%d: network \"%s\": %s",
						    net->pos.file, net->pos.line,
						    net->pos.col, net->key, ne.msg);
				else
					r = err_set(e, ne.code,
						    "network \"%s\": %s",
						    net->key, ne.msg);
			}
			continue;
		}
		if (!all && (r = netd_network_list(c, NULL, &all, &n, e)) < 0)
			return err_wrap(e, "listing networks");
		const struct netd_network *found = NULL;
		for (size_t k = 0; k < n && !found; k++)
			if (streq(all[k].name, net->name))
				found = &all[k];
		if (!found)
			r = err_set(e, ENOENT,
				    "%s:%d:%d: external network \"%s\" "
				    "does not exist",
				    net->pos.file, net->pos.line, net->pos.col,
				    net->name);
		/* root sees every user's networks: it never puts its
		 * containers on one of them (users cannot anyway). */
		else if (found->owner != host_uid())
			r = err_set(e, EPERM,
				    "%s:%d:%d: external network \"%s\" "
				    "belongs to uid %u (project %s), not to "
				    "uid %u: refusing to attach to it",
				    net->pos.file, net->pos.line, net->pos.col,
				    net->name, (unsigned)found->owner,
				    found->project ? found->project : "?",
				    (unsigned)host_uid());
	}
	netd_networks_free(all, n);
	return r;
}

/* Container names must be free on the host: no other project holds
 * them. */
int check_names(struct pstate *ps, json_t *new_recs,
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
	bool v6 = host_ip && strchr(host_ip, ':');
	_cleanup_close_ int s =
		socket(v6 ? AF_INET6 : AF_INET,
		       (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a = {0};
	a.in.sin_family = AF_INET;
	a.in.sin_port = htons((uint16_t)port);
	if (v6) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host_ip, &a.in6.sin6_addr);
	} else if (host_ip && *host_ip) {
		inet_pton(AF_INET, host_ip, &a.in.sin_addr);
	}
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	return bind(s, &a.sa, v6 ? sizeof(a.in6) : sizeof(a.in)) < 0 &&
	       errno == EADDRINUSE;
}

/* Host ports by protocol (tcp, udp), one bit each: a range of any length
 * is checked in one pass. */
struct port_bits {
	uint8_t b[2][65536 / 8];
};

static int proto_index(const char *proto)
{
	return proto && streq(proto, "udp");
}

static void bits_set(struct port_bits *pb, const char *proto, unsigned port)
{
	if (port && port < 65536)
		pb->b[proto_index(proto)][port / 8] |= (uint8_t)(1u << (port % 8));
}

static bool bits_get(const struct port_bits *pb, const char *proto,
		     unsigned port)
{
	return port < 65536 &&
	       (pb->b[proto_index(proto)][port / 8] & (1u << (port % 8)));
}

/* The netd network publishing proto/port, or NULL. */
static const struct netd_network *published_by(const struct netd_network *all,
					       size_t n_all, const char *proto,
					       unsigned port)
{
	for (size_t x = 0; x < n_all; x++)
		for (size_t y = 0; y < all[x].n_ports; y++) {
			const struct netd_port *hp = &all[x].ports[y];
			if (port >= hp->host_port &&
			    port < hp->host_port + hp->count &&
			    streq(hp->proto ?: "tcp", proto ?: "tcp"))
				return &all[x];
		}
	return NULL;
}

/* Published ports that this up will need are free: no listening socket
 * and no other project's mapping holds them (the project's own current
 * publications excepted).  netd's port.check needs an existing network,
 * so the mappings are read from its network list. */
int check_ports(struct pstate *ps, json_t *new_recs, struct orch_err *e)
{
	struct netd_network *all = NULL;
	size_t n_all = 0;
	bool listed = false;
	size_t i, k;
	json_t *rec, *p;
	int r = 0;
	_cleanup_free_ struct port_bits *ours = xcalloc(1, sizeof(*ours));
	_cleanup_free_ struct port_bits *theirs = xcalloc(1, sizeof(*theirs));
	/* Many ports: bind only those a socket of the host holds. */
	_cleanup_free_ uint8_t *held_tcp = NULL;
	_cleanup_free_ uint8_t *held_udp = NULL;
	size_t n_specs = 0;
	json_array_foreach(new_recs, i, rec)
		n_specs += json_array_size(json_object_get(rec, "port_specs"));
	json_array_foreach(state_containers(ps), i, rec)
		json_array_foreach(json_object_get(rec, "ports"), k, p)
			bits_set(ours, jstr(p, "Protocol"),
				 (unsigned)jint(p, "PublishedPort", 0));
	json_array_foreach(new_recs, i, rec)
	{
		json_array_foreach(json_object_get(rec, "port_specs"), k, p)
		{
			unsigned lo = (unsigned)jint(p, "published", 0);
			if (lo == 0 || jint(p, "published_end", lo) != lo)
				continue;
			const char *proto = jstr(p, "protocol");
			if (bits_get(ours, proto, lo))
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
				for (size_t x = 0; x < n_all; x++)
					for (size_t y = 0; y < all[x].n_ports;
					     y++) {
						struct netd_port *hp =
							&all[x].ports[y];
						for (unsigned c = 0;
						     c < hp->count; c++)
							bits_set(theirs,
								 hp->proto,
								 hp->host_port +
									 c);
					}
			}
			if (bits_get(theirs, proto, lo)) {
				const struct netd_network *by =
					published_by(all, n_all, proto, lo);
				r = err_set(e, EADDRINUSE,
					    "service \"%s\": host port "
					    "%u/%s is already published "
					    "by network %s (project %s)",
					    jstr(rec, "service"), lo, proto,
					    by ? by->name : "?",
					    by && by->project ? by->project
							      : "?");
				goto out;
			}
			bool udp = proto_index(proto);
			uint8_t **held = udp ? &held_udp : &held_tcp;
			if (n_specs > 16 && !*held)
				*held = host_ports_held(udp);
			if ((!*held || ((*held)[lo / 8] & (1u << (lo % 8)))) &&
			    host_port_busy(proto, jstr(p, "host_ip"), lo)) {
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


/* ---- keys up reads and does not apply -------------------------------------- */

void warn_unapplied(const struct project *m, json_t *new_recs)
{
	struct orch_diag d = {0};
	/* rt_cgroup_lacks, read at the first service that needs it. */
	unsigned lacks = 0;
	bool lacks_read = false;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		if (!service_made(s, new_recs))
			continue;
		/* Logs go to orch's files, or nowhere (none). */
		const char *ld = s->logging.driver;
		if (ld && !streq(ld, "json-file") && !streq(ld, "local") &&
		    !streq(ld, "none"))
			diag_add(&d, M_WARNING, service_key_pos(s, "logging"),
				 "service \"%s\": logging driver %s is not "
				 "applied by orch: its logs are kept in orch's "
				 "files, as json-file's",
				 s->name, ld);
		bool weights = s->blkio.weight != M_UNSET ||
			       s->blkio.n_dev[M_BLKIO_WEIGHT_DEVICE];
		if (!lacks_read && (weights || s->mem_swappiness != M_UNSET ||
				    s->oom_kill_disable)) {
			lacks = rt_cgroup_lacks();
			lacks_read = true;
		}
		/* What a value other than the default would ask: never
		 * applied (why NULL), or not on this host. */
		const struct {
			const char *key;
			bool set;
			const char *why;
		} keys[] = {
		    {"external_links",
		     s->external_links && s->external_links[0], NULL},
		    {"annotations", s->annotations.n > 0, NULL},
		    {"mem_swappiness",
		     s->mem_swappiness != M_UNSET &&
			 (lacks & RT_LACKS_SWAPPINESS),
		     "cgroup v2 has no swappiness of a cgroup's own"},
		    {"oom_kill_disable",
		     s->oom_kill_disable && (lacks & RT_LACKS_OOM_CONTROL),
		     "cgroup v2 cannot turn the OOM killer off"},
		    {"blkio_config", weights && (lacks & RT_LACKS_BLKIO_WEIGHT),
		     "this host's I/O schedulers have no weights (BFQ has); "
		     "its weights are left out"},
		};
		for (size_t j = 0; j < ARRAY_SIZE(keys); j++)
			if (keys[j].set)
				diag_add(&d, M_WARNING,
					 service_key_pos(s, keys[j].key),
					 "service \"%s\": %s is not applied "
					 "%s%s",
					 s->name, keys[j].key,
					 keys[j].why ? "here: "
						     : "by orch and is ignored",
					 keys[j].why ? keys[j].why : "");
	}
	diag_print(&d, stderr);
	diag_free(&d);
}
