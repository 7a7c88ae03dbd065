/* The model -> `docker compose config`'s normalized shape: long syntax for
 * ports, volumes and depends_on, environment as a mapping, durations as
 * compose prints them, absolute paths, defaults filled in.  Built as a
 * JSON tree (jansson) and printed as JSON or YAML. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <jansson.h>

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
	if (v != M_UNSET)
		json_object_set_new(o, k, json_integer(v));
}

static void set_true(json_t *o, const char *k, bool v)
{
	if (v)
		json_object_set_new(o, k, json_true());
}

static void set_dur(json_t *o, const char *k, int64_t ns)
{
	if (ns == M_UNSET)
		return;
	_cleanup_free_ char *s = duration_format(ns);
	json_object_set_new(o, k, json_string(s));
}

/* Byte sizes print as strings of a number of bytes, as compose does
 * (its UnitBytes), in YAML and in JSON. */
static void set_bytes(json_t *o, const char *k, int64_t v)
{
	if (v != M_UNSET)
		json_object_set_new(o, k, json_sprintf("%lld", (long long)v));
}

static void set_hosts(json_t *o, const struct m_kvlist *h)
{
	if (!h->n)
		return;
	json_t *a = json_array();
	for (size_t i = 0; i < h->n; i++)
		json_array_append_new(a, json_sprintf("%s=%s", h->v[i].key,
						      h->v[i].value ?: ""));
	json_object_set_new(o, "extra_hosts", a);
}

static void set_ulimits(json_t *o, const struct m_ulimit *u, size_t n)
{
	if (!n)
		return;
	json_t *m = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(
		    m, u[i].name,
		    u[i].soft == u[i].hard
			? json_integer(u[i].soft)
			: json_pack("{s:I, s:I}", "soft", (json_int_t)u[i].soft,
				    "hard", (json_int_t)u[i].hard));
	json_object_set_new(o, "ulimits", m);
}

static void set_blkio(json_t *o, const struct m_blkio *b)
{
	json_t *bo = json_object();
	set_int(bo, "weight", b->weight);
	for (int k = 0; k < M_BLKIO_NLISTS; k++) {
		if (!b->n_dev[k])
			continue;
		json_t *a = json_array();
		for (size_t i = 0; i < b->n_dev[k]; i++) {
			json_t *d = json_object();
			set_str(d, "path", b->dev[k][i].path);
			if (k == M_BLKIO_WEIGHT_DEVICE)
				set_int(d, "weight", b->dev[k][i].value);
			else
				json_object_set_new(
				    d, "rate", json_integer(b->dev[k][i].value));
			json_array_append_new(a, d);
		}
		json_object_set_new(bo, m_blkio_lists[k], a);
	}
	if (json_object_size(bo))
		json_object_set_new(o, "blkio_config", bo);
	else
		json_decref(bo);
}

static void set_strv(json_t *o, const char *k, char **v)
{
	if (!v)
		return;
	json_t *a = json_array();
	for (size_t i = 0; v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	json_object_set_new(o, k, a);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct m_kv *)a)->key,
		      ((const struct m_kv *)b)->key);
}

static json_t *kv_obj(const struct m_kvlist *l)
{
	json_t *o = json_object();
	struct m_kv *v = xmalloc((l->n ? l->n : 1) * sizeof(*v));
	if (l->n)
		memcpy(v, l->v, l->n * sizeof(*v));
	qsort(v, l->n, sizeof(*v), kv_cmp);
	for (size_t i = 0; i < l->n; i++)
		json_object_set_new(o, v[i].key,
				    v[i].value ? json_string(v[i].value)
					       : json_null());
	free(v);
	return o;
}

static void set_kv(json_t *o, const char *k, const struct m_kvlist *l)
{
	if (l->n)
		json_object_set_new(o, k, kv_obj(l));
}

static json_t *port_json(const struct m_port *p)
{
	json_t *o = json_object();
	set_str(o, "name", p->name);
	set_str(o, "mode", p->mode ? p->mode : "ingress");
	set_str(o, "host_ip", p->host_ip);
	json_object_set_new(o, "target", json_integer(p->target));
	if (p->published) {
		char buf[16];
		if (p->published_end != p->published)
			snprintf(buf, sizeof(buf), "%u-%u", p->published,
				 p->published_end);
		else
			snprintf(buf, sizeof(buf), "%u", p->published);
		json_object_set_new(o, "published", json_string(buf));
	}
	set_str(o, "protocol", proto_name(p->protocol));
	set_str(o, "app_protocol", p->app_protocol);
	return o;
}

static const char *const mount_type_names[] = {"volume", "bind",  "tmpfs",
					       "image",	 "npipe", "cluster"};

static json_t *mount_json(const struct m_mount *m)
{
	json_t *o = json_object();
	set_str(o, "type", mount_type_names[m->type]);
	set_str(o, "source", m->source);
	set_str(o, "target", m->target);
	set_true(o, "read_only", m->read_only);
	set_str(o, "consistency", m->consistency);
	if (m->type == M_MOUNT_BIND) {
		json_t *b = json_object();
		set_str(b, "propagation", m->bind_propagation);
		if (m->bind_create_host_path)
			json_object_set_new(b, "create_host_path", json_true());
		set_str(b, "selinux", m->bind_selinux);
		if (json_object_size(b))
			json_object_set_new(o, "bind", b);
		else
			json_decref(b);
	} else if (m->type == M_MOUNT_VOLUME) {
		json_t *v = json_object();
		set_true(v, "nocopy", m->volume_nocopy);
		set_str(v, "subpath", m->volume_subpath);
		json_object_set_new(o, "volume", v);
	} else if (m->type == M_MOUNT_TMPFS &&
		   (m->tmpfs_size != M_UNSET || m->tmpfs_mode != M_UNSET)) {
		json_t *t = json_object();
		set_bytes(t, "size", m->tmpfs_size);
		set_int(t, "mode", m->tmpfs_mode);
		json_object_set_new(o, "tmpfs", t);
	}
	return o;
}

static json_t *resources_json(const struct m_resources *r)
{
	json_t *o = json_object();
	if (r->cpus >= 0) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%g", r->cpus);
		json_object_set_new(o, "cpus", json_string(buf));
	}
	set_bytes(o, "memory", r->memory);
	set_int(o, "pids", r->pids);
	return o;
}

static const char *const restart_names[] = {"no", "always", "on-failure",
					    "unless-stopped"};
static const char *const cond_names[] = {"service_started", "service_healthy",
					 "service_completed_successfully"};

/* devices in compose's long form: HOST[:CONTAINER][:PERMISSIONS] becomes
 * source, target (the host path when not given) and permissions. */
static json_t *devices_json(char *const *devices)
{
	json_t *a = json_array();
	for (size_t i = 0; devices[i]; i++) {
		_cleanup_free_ char *copy = xstrdup(devices[i]);
		char *f[3] = {0};
		/* HOST:PERMS is short for HOST:HOST:PERMS. */
		if (str_fields(copy, ':', f, 3) == 2 && *f[1] &&
		    strspn(f[1], "rwm") == strlen(f[1])) {
			f[2] = f[1];
			f[1] = NULL;
		}
		json_t *o = json_object();
		set_str(o, "source", f[0]);
		set_str(o, "target", f[1] && *f[1] ? f[1] : f[0]);
		set_str(o, "permissions", f[2] && *f[2] ? f[2] : "rwm");
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *deploy_json(const struct m_deploy *d)
{
	json_t *o = json_object();
	set_str(o, "mode", d->mode);
	set_int(o, "replicas", d->replicas);
	set_kv(o, "labels", &d->labels);
	json_t *res = json_object();
	json_t *lim = resources_json(&d->limits);
	json_t *rsv = resources_json(&d->reservations);
	if (json_object_size(lim))
		json_object_set(res, "limits", lim);
	if (json_object_size(rsv))
		json_object_set(res, "reservations", rsv);
	json_decref(lim);
	json_decref(rsv);
	json_object_set_new(o, "resources", res);
	if (d->restart_policy.present) {
		json_t *rp = json_object();
		set_str(rp, "condition", d->restart_policy.condition);
		set_dur(rp, "delay", d->restart_policy.delay_ns);
		set_int(rp, "max_attempts", d->restart_policy.max_attempts);
		set_dur(rp, "window", d->restart_policy.window_ns);
		json_object_set_new(o, "restart_policy", rp);
	}
	return o;
}

static json_t *file_refs_json(const struct m_file_ref *r, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		set_str(o, "source", r[i].source);
		set_str(o, "target", r[i].target);
		set_str(o, "uid", r[i].uid);
		set_str(o, "gid", r[i].gid);
		/* A file mode in octal, as a string, as compose prints it. */
		if (r[i].mode != M_UNSET)
			json_object_set_new(
			    o, "mode",
			    json_sprintf("%04llo", (long long)r[i].mode));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *hook_json(const struct m_hook *h)
{
	json_t *j = json_object();
	set_strv(j, "command", h->command);
	set_kv(j, "environment", &h->environment);
	set_true(j, "privileged", h->privileged);
	set_str(j, "user", h->user);
	set_str(j, "working_dir", h->working_dir);
	return j;
}

static void set_hooks(json_t *o, const char *k, const struct m_hook *h,
		      size_t n)
{
	if (!n)
		return;
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, hook_json(&h[i]));
	json_object_set_new(o, k, a);
}

static json_t *service_json(const struct service *s)
{
	json_t *o = json_object();
	if (s->build.present) {
		const struct m_build *b = &s->build;
		json_t *bo = json_object();
		set_str(bo, "context", b->context);
		set_str(bo, "dockerfile",
			b->dockerfile	       ? b->dockerfile
			: b->dockerfile_inline ? NULL
					       : "Dockerfile");
		set_str(bo, "dockerfile_inline", b->dockerfile_inline);
		set_kv(bo, "args", &b->args);
		set_kv(bo, "labels", &b->labels);
		set_kv(bo, "additional_contexts", &b->contexts);
		set_str(bo, "target", b->target);
		set_str(bo, "network", b->network);
		set_strv(bo, "cache_from", b->cache_from);
		if (b->n_secrets)
			json_object_set_new(
			    bo, "secrets",
			    file_refs_json(b->secrets, b->n_secrets));
		set_strv(bo, "tags", b->tags);
		set_bytes(bo, "shm_size", b->shm_size);
		set_true(bo, "no_cache", b->no_cache);
		set_true(bo, "pull", b->pull);
		set_hosts(bo, &b->extra_hosts);
		if (b->ssh.n) {
			json_t *a = json_array();
			for (size_t i = 0; i < b->ssh.n; i++)
				json_array_append_new(
				    a, b->ssh.v[i].value && *b->ssh.v[i].value
					   ? json_sprintf("%s=%s",
							  b->ssh.v[i].key,
							  b->ssh.v[i].value)
					   : json_string(b->ssh.v[i].key));
			json_object_set_new(bo, "ssh", a);
		}
		set_ulimits(bo, b->ulimits, b->n_ulimits);
		json_object_set_new(o, "build", bo);
	}
	set_blkio(o, &s->blkio);
	set_strv(o, "cap_add", s->cap_add);
	set_strv(o, "cap_drop", s->cap_drop);
	set_str(o, "cgroup", s->cgroup);
	set_str(o, "cgroup_parent", s->cgroup_parent);
	set_strv(o, "command", s->command);
	if (s->n_configs)
		json_object_set_new(o, "configs",
				    file_refs_json(s->configs, s->n_configs));
	set_str(o, "container_name", s->container_name);
	if (s->cpus >= 0)
		json_object_set_new(o, "cpus", json_real(s->cpus));
	set_int(o, "cpu_shares", s->cpu_shares);
	set_int(o, "cpu_period", s->cpu_period);
	set_int(o, "cpu_quota", s->cpu_quota);
	set_str(o, "cpuset", s->cpuset);
	if (s->n_depends_on) {
		json_t *deps = json_object();
		for (size_t i = 0; i < s->n_depends_on; i++) {
			const struct m_dep *d = &s->depends_on[i];
			json_t *dj = json_object();
			set_str(dj, "condition", cond_names[d->condition]);
			set_true(dj, "restart", d->restart);
			json_object_set_new(dj, "required",
					    json_boolean(d->required));
			json_object_set_new(deps, d->service, dj);
		}
		json_object_set_new(o, "depends_on", deps);
	}
	if (s->deploy.present)
		json_object_set_new(o, "deploy", deploy_json(&s->deploy));
	if (s->n_watch) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->n_watch; i++) {
			const struct m_watch *w = &s->watch[i];
			json_t *r = json_pack("{s:s, s:s}", "action",
					      m_watch_actions[w->action],
					      "path", w->path);
			set_str(r, "target", w->target);
			set_strv(r, "ignore", w->ignore);
			set_strv(r, "include", w->include);
			set_true(r, "initial_sync", w->initial_sync);
			if (w->exec)
				json_object_set_new(r, "exec",
						    hook_json(w->exec));
			json_array_append_new(a, r);
		}
		json_object_set_new(o, "develop", json_pack("{s:o}", "watch", a));
	}
	set_strv(o, "device_cgroup_rules", s->device_cgroup_rules);
	if (s->devices)
		json_object_set_new(o, "devices", devices_json(s->devices));
	set_strv(o, "dns", s->dns);
	set_strv(o, "dns_opt", s->dns_opt);
	set_strv(o, "dns_search", s->dns_search);
	set_str(o, "domainname", s->domainname);
	set_strv(o, "entrypoint", s->entrypoint);
	if (s->n_env_files) {
		json_t *ef = json_array();
		for (size_t i = 0; i < s->n_env_files; i++) {
			const struct m_env_file *f = &s->env_files[i];
			json_t *e = json_pack("{s:s,s:b}", "path", f->path,
					      "required", f->required);
			set_str(e, "format", f->format);
			json_array_append_new(ef, e);
		}
		json_object_set_new(o, "env_file", ef);
	}
	if (s->environment.n)
		json_object_set_new(o, "environment", kv_obj(&s->environment));
	set_strv(o, "expose", s->expose);
	set_strv(o, "external_links", s->external_links);
	set_hosts(o, &s->extra_hosts);
	set_strv(o, "group_add", s->group_add);
	if (s->healthcheck.present) {
		const struct m_healthcheck *h = &s->healthcheck;
		json_t *hj = json_object();
		set_strv(hj, "test", h->test);
		set_dur(hj, "timeout", h->timeout_ns);
		set_dur(hj, "interval", h->interval_ns);
		set_int(hj, "retries", h->retries);
		set_dur(hj, "start_period", h->start_period_ns);
		set_dur(hj, "start_interval", h->start_interval_ns);
		set_true(hj, "disable", h->disable);
		json_object_set_new(o, "healthcheck", hj);
	}
	set_str(o, "hostname", s->hostname);
	set_str(o, "image", s->image);
	set_true(o, "init", s->init);
	set_str(o, "ipc", s->ipc);
	set_kv(o, "annotations", &s->annotations);
	set_kv(o, "labels", &s->labels);
	set_strv(o, "links", s->links);
	if (s->logging.driver || s->logging.options.n) {
		json_t *lj = json_object();
		set_str(lj, "driver", s->logging.driver);
		set_kv(lj, "options", &s->logging.options);
		json_object_set_new(o, "logging", lj);
	}
	set_str(o, "mac_address", s->mac_address);
	set_bytes(o, "mem_limit", s->mem_limit);
	set_bytes(o, "mem_reservation", s->mem_reservation);
	set_int(o, "mem_swappiness", s->mem_swappiness);
	set_bytes(o, "memswap_limit", s->memswap_limit);
	set_str(o, "network_mode", s->network_mode);
	if (s->n_networks) {
		json_t *nets = json_object();
		for (size_t i = 0; i < s->n_networks; i++) {
			const struct m_svc_net *n = &s->networks[i];
			json_t *nj = json_object();
			set_strv(nj, "aliases", n->aliases);
			set_str(nj, "ipv4_address", n->ipv4_address);
			set_str(nj, "ipv6_address", n->ipv6_address);
			set_strv(nj, "link_local_ips", n->link_local_ips);
			set_str(nj, "mac_address", n->mac_address);
			set_int(nj, "priority", n->priority);
			if (!json_object_size(nj)) {
				json_decref(nj);
				nj = json_null();
			}
			json_object_set_new(nets, n->name, nj);
		}
		json_object_set_new(o, "networks", nets);
	}
	set_true(o, "oom_kill_disable", s->oom_kill_disable);
	set_int(o, "oom_score_adj", s->oom_score_adj);
	set_str(o, "pid", s->pid);
	set_int(o, "pids_limit", s->pids_limit);
	set_str(o, "platform", s->platform);
	if (s->n_ports) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->n_ports; i++)
			json_array_append_new(a, port_json(&s->ports[i]));
		json_object_set_new(o, "ports", a);
	}
	set_hooks(o, "post_start", s->post_start, s->n_post_start);
	set_hooks(o, "pre_start", s->pre_start, s->n_pre_start);
	set_hooks(o, "pre_stop", s->pre_stop, s->n_pre_stop);
	set_true(o, "privileged", s->privileged);
	set_strv(o, "profiles", s->profiles);
	set_str(o, "pull_policy", s->pull_policy);
	set_dur(o, "pull_refresh_after", s->pull_refresh_after_ns);
	set_true(o, "read_only", s->read_only);
	if (s->restart.present) {
		const char *name = restart_names[s->restart.policy];
		if (s->restart.max_retries != M_UNSET) {
			_cleanup_free_ char *r = xasprintf(
			    "%s:%lld", name, (long long)s->restart.max_retries);
			json_object_set_new(o, "restart", json_string(r));
		} else {
			set_str(o, "restart", name);
		}
	}
	set_int(o, "scale", s->scale);
	if (s->n_secrets)
		json_object_set_new(o, "secrets",
				    file_refs_json(s->secrets, s->n_secrets));
	set_strv(o, "security_opt", s->security_opt);
	set_bytes(o, "shm_size", s->shm_size);
	set_true(o, "stdin_open", s->stdin_open);
	if (s->no_attach)
		json_object_set_new(o, "attach", json_false());
	set_dur(o, "stop_grace_period", s->stop_grace_period_ns);
	set_str(o, "stop_signal", s->stop_signal);
	set_kv(o, "sysctls", &s->sysctls);
	set_strv(o, "tmpfs", s->tmpfs);
	set_true(o, "tty", s->tty);
	set_ulimits(o, s->ulimits, s->n_ulimits);
	set_str(o, "user", s->user);
	set_str(o, "userns_mode", s->userns_mode);
	set_str(o, "uts", s->uts);
	if (s->n_volumes) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->n_volumes; i++)
			json_array_append_new(a, mount_json(&s->volumes[i]));
		json_object_set_new(o, "volumes", a);
	}
	set_strv(o, "volumes_from", s->volumes_from);
	set_str(o, "working_dir", s->working_dir);
	return o;
}

static json_t *network_json(const struct network *n)
{
	json_t *o = json_object();
	set_str(o, "name", n->name);
	if (!n->external)
		set_str(o, "driver", n->driver);
	set_kv(o, "driver_opts", &n->driver_opts);
	if (n->ipam_driver || n->n_ipam) {
		json_t *ipam = json_object();
		set_str(ipam, "driver", n->ipam_driver);
		if (n->n_ipam) {
			json_t *cfg = json_array();
			for (size_t i = 0; i < n->n_ipam; i++) {
				json_t *pj = json_object();
				set_str(pj, "subnet", n->ipam[i].subnet);
				set_str(pj, "gateway", n->ipam[i].gateway);
				set_str(pj, "ip_range", n->ipam[i].ip_range);
				set_kv(pj, "aux_addresses",
				       &n->ipam[i].aux_addresses);
				json_array_append_new(cfg, pj);
			}
			json_object_set_new(ipam, "config", cfg);
		}
		json_object_set_new(o, "ipam", ipam);
	}
	set_true(o, "external", n->external);
	set_true(o, "internal", n->internal);
	set_true(o, "attachable", n->attachable);
	if (n->ipv4_off)
		json_object_set_new(o, "enable_ipv4", json_false());
	set_true(o, "enable_ipv6", n->enable_ipv6);
	set_kv(o, "labels", &n->labels);
	return o;
}

static json_t *volume_json(const struct volume *v)
{
	json_t *o = json_object();
	set_str(o, "name", v->name);
	set_str(o, "driver", v->driver);
	set_kv(o, "driver_opts", &v->driver_opts);
	set_true(o, "external", v->external);
	set_kv(o, "labels", &v->labels);
	return o;
}

static json_t *file_objs_json(const struct m_file_obj *v, size_t n)
{
	json_t *all = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		set_str(o, "name", v[i].name);
		set_str(o, "file", v[i].file);
		set_str(o, "environment", v[i].environment);
		set_str(o, "content", v[i].content);
		set_true(o, "external", v[i].external);
		set_kv(o, "labels", &v[i].labels);
		json_object_set_new(all, v[i].key, o);
	}
	return all;
}

static json_t *project_json(const struct project *p)
{
	json_t *o = json_object();
	set_str(o, "name", p->name);
	json_t *svcs = json_object();
	for (size_t i = 0; i < p->n_services; i++)
		json_object_set_new(svcs, p->services[i].name,
				    service_json(&p->services[i]));
	json_object_set_new(o, "services", svcs);
	if (p->n_networks) {
		json_t *nets = json_object();
		for (size_t i = 0; i < p->n_networks; i++)
			json_object_set_new(nets, p->networks[i].key,
					    network_json(&p->networks[i]));
		json_object_set_new(o, "networks", nets);
	}
	if (p->n_volumes) {
		json_t *vols = json_object();
		for (size_t i = 0; i < p->n_volumes; i++)
			json_object_set_new(vols, p->volumes[i].key,
					    volume_json(&p->volumes[i]));
		json_object_set_new(o, "volumes", vols);
	}
	if (p->n_configs)
		json_object_set_new(o, "configs",
				    file_objs_json(p->configs, p->n_configs));
	if (p->n_secrets)
		json_object_set_new(o, "secrets",
				    file_objs_json(p->secrets, p->n_secrets));
	return o;
}

/* ---- YAML printing ------------------------------------------------------ */

/* Whether a string must be quoted to read back as the same string. */
static bool needs_quotes(const char *s)
{
	static const char *const special[] = {
	    "null",  "Null",  "NULL",  "~",   "true", "True", "TRUE",
	    "false", "False", "FALSE", "yes", "Yes",  "YES",  "no",
	    "No",    "NO",    "on",    "On",  "ON",   "off",  "Off",
	    "OFF",   "y",     "Y",     "n",   "N",    "<<",
	};
	if (!*s)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(special); i++)
		if (streq(s, special[i]))
			return true;
	if (s[0] == '-' ? !s[1] || s[1] == ' '
			: !!strchr("?:,[]{}#&*!|>'\"%@` \t", s[0]))
		return true;
	size_t len = strlen(s);
	if (isspace((unsigned char)s[len - 1]) || strstr(s, ": ") ||
	    strstr(s, " #") || s[len - 1] == ':')
		return true;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '"' ||
		    *c == '\\')
			return true;
	/* Anything that reads as a number. */
	char *end;
	strtod(s, &end);
	if (!*end)
		return true;
	/* YAML 1.1 also reads 1_000, 12:30, 0x1f, 0o17 and 0b101 as numbers. */
	const char *d = s + (s[0] == '-' || s[0] == '+');
	if (isdigit((unsigned char)*d) &&
	    strspn(d, "0123456789_:") == strlen(d))
		return true;
	if (d[0] == '0' && strchr("xXoObB", d[1]) && d[1] &&
	    strspn(d + 2, "0123456789abcdefABCDEF_") == strlen(d + 2))
		return true;
	return false;
}

static void yaml_string(struct strbuf *sb, const char *s)
{
	if (!needs_quotes(s)) {
		sb_adds(sb, s);
		return;
	}
	sb_adds(sb, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"':
			sb_adds(sb, "\\\"");
			break;
		case '\\':
			sb_adds(sb, "\\\\");
			break;
		case '\n':
			sb_adds(sb, "\\n");
			break;
		case '\t':
			sb_adds(sb, "\\t");
			break;
		case '\r':
			sb_adds(sb, "\\r");
			break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				sb_printf(sb, "\\x%02x", *c);
			else
				sb_add(sb, c, 1);
		}
	}
	sb_adds(sb, "\"");
}

static void yaml_scalar(struct strbuf *sb, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		yaml_string(sb, json_string_value(v));
		break;
	case JSON_INTEGER:
		sb_printf(sb, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		sb_printf(sb, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		sb_adds(sb, "true");
		break;
	case JSON_FALSE:
		sb_adds(sb, "false");
		break;
	case JSON_NULL:
		sb_adds(sb, "null");
		break;
	case JSON_OBJECT:
		sb_adds(sb, "{}");
		break;
	case JSON_ARRAY:
		sb_adds(sb, "[]");
		break;
	}
}

static bool is_block(json_t *v)
{
	return (json_is_object(v) && json_object_size(v)) ||
	       (json_is_array(v) && json_array_size(v));
}

static void indent(struct strbuf *sb, int n)
{
	for (int i = 0; i < n; i++)
		sb_adds(sb, " ");
}

static void yaml_node(struct strbuf *sb, json_t *v, int ind, bool inline_first);

/* Mapping entries; the first one continues the current line when
 * inline_first (a "- " list item). */
static void yaml_object(struct strbuf *sb, json_t *o, int ind,
			bool inline_first)
{
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach(o, k, v)
	{
		if (!(first && inline_first))
			indent(sb, ind);
		first = false;
		yaml_string(sb, k);
		sb_adds(sb, ":");
		if (is_block(v)) {
			sb_adds(sb, "\n");
			yaml_node(sb, v, ind + 2, false);
		} else {
			sb_adds(sb, " ");
			yaml_scalar(sb, v);
			sb_adds(sb, "\n");
		}
	}
}

static void yaml_node(struct strbuf *sb, json_t *v, int ind, bool inline_first)
{
	if (json_is_object(v)) {
		yaml_object(sb, v, ind, inline_first);
		return;
	}
	size_t i;
	json_t *it;
	json_array_foreach(v, i, it)
	{
		indent(sb, ind);
		sb_adds(sb, "- ");
		if (json_is_object(it) && json_object_size(it))
			yaml_object(sb, it, ind + 2, true);
		else if (is_block(it)) {
			sb_adds(sb, "\n");
			yaml_node(sb, it, ind + 2, false);
		} else {
			yaml_scalar(sb, it);
			sb_adds(sb, "\n");
		}
	}
}

char *compose_dollars_doubled(const char *s)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	for (; *s; s++)
		sb_adds(&sb, *s == '$' ? "$$" : (char[]){*s, '\0'});
	return sb_steal(&sb);
}

void compose_escape_dollars(json_t *v)
{
	const char *k;
	json_t *it;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach(v, k, it) compose_escape_dollars(it);
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, it) compose_escape_dollars(it);
		break;
	case JSON_STRING: {
		const char *s = json_string_value(v);
		if (!strchr(s, '$'))
			break;
		char *d = compose_dollars_doubled(s);
		json_string_set(v, d);
		free(d);
		break;
	}
	default:
		break;
	}
}

/* ---- x-* extensions ------------------------------------------------------ */

/* A scalar as YAML 1.2's core schema reads it (compose's reader). */
static json_t *scalar_json(const struct ynode *n)
{
	if (n->kind == Y_NULL)
		return json_null();
	const char *s = n->s;
	if (n->quoted)
		return json_string(s);
	if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE"))
		return json_true();
	if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE"))
		return json_false();
	if (!*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") ||
	    streq(s, "NULL"))
		return json_null();
	char *end;
	errno = 0;
	long long i = strtoll(s, &end, 10);
	if (!*end && errno == 0 && (isdigit((unsigned char)*s) ||
				    ((*s == '-' || *s == '+') && s[1])))
		return json_integer(i);
	double d = strtod(s, &end);
	if (!*end && (isdigit((unsigned char)*s) || *s == '-' || *s == '+' ||
		      *s == '.'))
		return json_real(d);
	return json_string(s);
}

static json_t *ynode_json(const struct ynode *n)
{
	if (n->kind == Y_SEQ) {
		json_t *a = json_array();
		for (size_t i = 0; i < n->n; i++)
			json_array_append_new(a, ynode_json(n->v[i]));
		return a;
	}
	if (n->kind == Y_MAP) {
		json_t *o = json_object();
		for (size_t i = 0; i < n->n; i++)
			json_object_set_new(o, n->k[i]->s, ynode_json(n->v[i]));
		return o;
	}
	return scalar_json(n);
}

static bool has_extensions(const struct ynode *n)
{
	for (size_t i = 0; n->kind == Y_MAP && i < n->n; i++)
		if (startswith(n->k[i]->s, "x-"))
			return true;
	return false;
}

/* out's value for k; a null there becomes an object when the file's
 * mapping has extensions to keep (a network attached with no options). */
static json_t *slot_for(json_t *out, const char *k, const struct ynode *n)
{
	json_t *v = json_object_get(out, k);
	if (json_is_null(v) && has_extensions(n)) {
		v = json_object();
		json_object_set_new(out, k, v);
	}
	return v;
}

/* Copies the x-* keys of the file's mappings to the output's objects at
 * the same place, at every level where the two have the same shape. */
static void copy_extensions(json_t *out, const struct ynode *n, int depth)
{
	if (!n || depth > YAML_MAX_DEPTH)
		return;
	if (n->kind == Y_MAP && json_is_object(out)) {
		for (size_t i = 0; i < n->n; i++) {
			const char *k = n->k[i]->s;
			if (startswith(k, "x-"))
				json_object_set_new(out, k, ynode_json(n->v[i]));
			else
				copy_extensions(slot_for(out, k, n->v[i]),
						n->v[i], depth + 1);
		}
	} else if (n->kind == Y_SEQ && json_is_array(out) &&
		   json_array_size(out) == n->n) {
		for (size_t i = 0; i < n->n; i++)
			copy_extensions(json_array_get(out, i), n->v[i],
					depth + 1);
	}
}

char *project_render(const struct project *p, enum compose_format fmt)
{
	json_t *root = project_json(p);
	copy_extensions(root, p->root, 0);
	if (!p->raw)
		compose_escape_dollars(root);
	char *out;
	if (fmt == COMPOSE_JSON) {
		char *s =
		    json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (!s)
			abort();
		out = xasprintf("%s\n", s);
		free(s);
	} else {
		out = yaml_render(root);
	}
	json_decref(root);
	return out;
}

char *yaml_render(json_t *v)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	if (is_block(v))
		yaml_node(&sb, v, 0, false);
	else {
		yaml_scalar(&sb, v);
		sb_adds(&sb, "\n");
	}
	return sb_steal(&sb);
}
