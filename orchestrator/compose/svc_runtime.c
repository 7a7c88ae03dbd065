/* Service keys about how a service runs: healthcheck, restart, deploy
 * (replicas, resources, restart_policy), build, logging, ulimits, configs
 * and secrets. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <stddef.h>
#include <sys/socket.h>

/* ---- healthcheck, restart, deploy
 * -------------------------------------------- */

void svc_healthcheck(struct cctx *c, struct service *s, const struct ynode *n)
{
	static const char *const keys[] = {
	    "test",	    "interval",	      "timeout", "retries",
	    "start_period", "start_interval", "disable"};
	struct m_healthcheck *h = &s->healthcheck;
	h->present = true;
	h->pos = n->pos;
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "test"))) {
		size_t l = cpath_push(c, "test");
		if (v->kind == Y_SCALAR) {
			h->test = arena_new_array(c->a, char *, 3);
			h->test[0] = "CMD-SHELL";
			h->test[1] = v->s;
		} else if ((h->test = c_strlist(c, v, false))) {
			const char *first = h->test[0];
			if (!first ||
			    (!streq(first, "NONE") && !streq(first, "CMD") &&
			     !streq(first, "CMD-SHELL")))
				cerr(c, v,
				     "a test list must start with \"CMD\", "
				     "\"CMD-SHELL\" or \"NONE\"");
			else if (streq(first, "NONE"))
				h->disable = true;
		}
		cpath_pop(c, l);
	}
	static const struct {
		const char *key;
		size_t off;
	} durs[] = {
	    {"interval", offsetof(struct m_healthcheck, interval_ns)},
	    {"timeout", offsetof(struct m_healthcheck, timeout_ns)},
	    {"start_period", offsetof(struct m_healthcheck, start_period_ns)},
	    {"start_interval",
	     offsetof(struct m_healthcheck, start_interval_ns)},
	};
	for (size_t i = 0; i < ARRAY_SIZE(durs); i++) {
		int64_t *dst = (int64_t *)((char *)h + durs[i].off);
		if (!(v = ymap_get(n, durs[i].key)))
			continue;
		size_t l = cpath_push(c, "%s", durs[i].key);
		c_duration(c, v, dst);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "retries"))) {
		size_t l = cpath_push(c, "retries");
		c_int(c, v, 0, INT32_MAX, &h->retries);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "disable"))) {
		bool b = false;
		size_t l = cpath_push(c, "disable");
		if (c_bool(c, v, &b) && b)
			h->disable = true;
		cpath_pop(c, l);
	}
}

void svc_restart(struct cctx *c, struct service *s, const struct ynode *n)
{
	const char *v = c_str(c, n);
	struct m_restart_policy *r = &s->restart;
	if (!v)
		return;
	r->present = true;
	r->pos = n->pos;
	r->max_retries = M_UNSET;
	if (streq(v, "no") || streq(v, "false"))
		r->policy = M_RESTART_NO;
	else if (streq(v, "always"))
		r->policy = M_RESTART_ALWAYS;
	else if (streq(v, "unless-stopped"))
		r->policy = M_RESTART_UNLESS_STOPPED;
	else if (streq(v, "on-failure"))
		r->policy = M_RESTART_ON_FAILURE;
	else if (startswith(v, "on-failure:")) {
		char *end;
		const char *num = v + strlen("on-failure:");
		errno = 0;
		long long m = strtoll(num, &end, 10);
		if (!isdigit((unsigned char)*num) || *end || errno ||
		    m > INT32_MAX)
			goto bad;
		r->policy = M_RESTART_ON_FAILURE;
		r->max_retries = m;
	} else
		goto bad;
	return;
bad:
	r->present = false;
	cerr(c, n,
	     "invalid restart policy \"%s\" (want no, always, "
	     "on-failure[:N] or unless-stopped)",
	     shown_value(v));
}

static void resources(struct cctx *c, const struct ynode *n,
		      struct m_resources *r)
{
	static const char *const keys[] = {"cpus", "memory", "pids", "devices",
					   "generic_resources"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "cpus"))) {
		size_t l = cpath_push(c, "cpus");
		c_double(c, v, &r->cpus);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "memory"))) {
		size_t l = cpath_push(c, "memory");
		c_bytes(c, v, false, &r->memory);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "pids"))) {
		size_t l = cpath_push(c, "pids");
		c_int(c, v, -1, INT64_MAX, &r->pids);
		cpath_pop(c, l);
	}
}

void svc_deploy(struct cctx *c, struct service *s, const struct ynode *n)
{
	static const char *const keys[] = {
	    "mode",	     "replicas",	"labels",
	    "resources",     "restart_policy",	"placement",
	    "update_config", "rollback_config", "endpoint_mode",
	};
	static const char *const rp_keys[] = {"condition", "delay",
					      "max_attempts", "window"};
	struct m_deploy *d = &s->deploy;
	d->present = true;
	d->pos = n->pos;
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	static const char *const ignored[] = {
	    "placement", "update_config", "rollback_config", "endpoint_mode"};
	c_ignored_keys(c, n, ignored, ARRAY_SIZE(ignored));
	const struct ynode *v;
	size_t l;
	if ((v = ymap_get(n, "mode")))
		d->mode = c_str(c, v);
	if ((v = ymap_get(n, "replicas"))) {
		l = cpath_push(c, "replicas");
		c_int(c, v, 0, ORCH_MAX_REPLICAS, &d->replicas);
		cpath_pop(c, l);
	}
	if ((v = ymap_get(n, "labels")))
		c_kvlist(c, v, KV_LABELS, &d->labels);
	const struct ynode *res = ymap_get(n, "resources");
	if (res && c_map(c, res)) {
		static const char *const rkeys[] = {"limits", "reservations"};
		l = cpath_push(c, "resources");
		c_known_keys(c, res, rkeys, ARRAY_SIZE(rkeys));
		if ((v = ymap_get(res, "limits"))) {
			size_t l2 = cpath_push(c, "limits");
			resources(c, v, &d->limits);
			cpath_pop(c, l2);
		}
		if ((v = ymap_get(res, "reservations"))) {
			size_t l2 = cpath_push(c, "reservations");
			resources(c, v, &d->reservations);
			cpath_pop(c, l2);
		}
		cpath_pop(c, l);
	}
	const struct ynode *rp = ymap_get(n, "restart_policy");
	if (rp) {
		l = cpath_push(c, "restart_policy");
		if (c_map(c, rp)) {
			c_known_keys(c, rp, rp_keys, ARRAY_SIZE(rp_keys));
			d->restart_policy.present = true;
			if ((v = ymap_get(rp, "condition"))) {
				const char *cs = c_str(c, v);
				if (cs && !streq(cs, "none") &&
				    !streq(cs, "on-failure") &&
				    !streq(cs, "any"))
					cerr(c, v,
					     "invalid condition \"%s\" (want "
					     "none, "
					     "on-failure or any)",
					     shown_value(cs));
				d->restart_policy.condition = (char *)cs;
			}
			if ((v = ymap_get(rp, "delay")))
				c_duration(c, v, &d->restart_policy.delay_ns);
			if ((v = ymap_get(rp, "window")))
				c_duration(c, v, &d->restart_policy.window_ns);
			if ((v = ymap_get(rp, "max_attempts")))
				c_int(c, v, 0, INT32_MAX,
				      &d->restart_policy.max_attempts);
		}
		cpath_pop(c, l);
	}
}

static void ulimits_parse(struct cctx *c, const struct ynode *n,
			  struct m_ulimit **out, size_t *n_out);

/* ---- build, logging, ulimits, configs/secrets
 * ---------------------------------- */

static void file_refs(struct cctx *c, const struct ynode *n,
		      struct m_file_ref **out, size_t *n_out);

void svc_build(struct cctx *c, struct service *s, const struct ynode *n)
{
	static const char *const keys[] = {
	    "context",
	    "dockerfile",
	    "dockerfile_inline",
	    "args",
	    "ssh",
	    "labels",
	    "cache_from",
	    "cache_to",
	    "no_cache",
	    "additional_contexts",
	    "network",
	    "target",
	    "secrets",
	    "tags",
	    "ulimits",
	    "platforms",
	    "privileged",
	    "extra_hosts",
	    "isolation",
	    "shm_size",
	    "pull",
	    "entitlements",
	    "no_cache_filter",
	    "provenance",
	    "sbom",
	};
	/* Known to compose, without effect on orch's builder. */
	static const char *const ignored[] = {
	    "cache_to",	  "platforms",	     "privileged",
	    "isolation",  "entitlements", "no_cache_filter", "provenance",
	    "sbom",
	};
	struct m_build *b = &s->build;
	b->present = true;
	b->pos = n->pos;
	const char *ctx = ".";
	if (n->kind == Y_SCALAR) {
		ctx = n->s;
	} else if (c_map(c, n)) {
		c_known_keys(c, n, keys, ARRAY_SIZE(keys));
		c_ignored_keys(c, n, ignored, ARRAY_SIZE(ignored));
		const struct ynode *v;
		if ((v = ymap_get(n, "context")) && c_str(c, v))
			ctx = v->s;
		if ((v = ymap_get(n, "dockerfile")))
			b->dockerfile = c_str(c, v);
		if ((v = ymap_get(n, "dockerfile_inline")))
			b->dockerfile_inline = c_str(c, v);
		if ((v = ymap_get(n, "args"))) {
			size_t l = cpath_push(c, "args");
			c_kvlist(c, v, KV_ENV, &b->args);
			cpath_pop(c, l);
		}
		if ((v = ymap_get(n, "labels")))
			c_kvlist(c, v, KV_LABELS, &b->labels);
		if ((v = ymap_get(n, "additional_contexts"))) {
			size_t l = cpath_push(c, "additional_contexts");
			c_kvlist(c, v, KV_LABELS, &b->contexts);
			cpath_pop(c, l);
			for (size_t i = 0; i < b->contexts.n; i++) {
				struct m_kv *kv = &b->contexts.v[i];
				if (!kv->value || !*kv->value) {
					size_t k = cpath_push(c, "%s", kv->key);
					cerr(c, v, "has no value");
					cpath_pop(c, k);
					continue;
				}
				if (!strstr(kv->value, "://") &&
				    !startswith(kv->value, "service:"))
					kv->value = path_resolve(
					    c->a, c->workdir, c->home,
					    kv->value);
			}
		}
		if ((v = ymap_get(n, "target")))
			b->target = c_str(c, v);
		if ((v = ymap_get(n, "network")))
			b->network = c_str(c, v);
		if ((v = ymap_get(n, "extra_hosts"))) {
			size_t l = cpath_push(c, "extra_hosts");
			c_kvlist(c, v, KV_HOSTS, &b->extra_hosts);
			cpath_pop(c, l);
		}
		if ((v = ymap_get(n, "ssh"))) {
			size_t l = cpath_push(c, "ssh");
			c_kvlist(c, v, KV_LABELS, &b->ssh);
			cpath_pop(c, l);
			for (size_t i = 0; i < b->ssh.n; i++)
				if (b->ssh.v[i].value && *b->ssh.v[i].value)
					b->ssh.v[i].value = path_resolve(
					    c->a, c->workdir, c->home,
					    b->ssh.v[i].value);
		}
		if ((v = ymap_get(n, "ulimits"))) {
			size_t l = cpath_push(c, "ulimits");
			ulimits_parse(c, v, &b->ulimits, &b->n_ulimits);
			cpath_pop(c, l);
		}
		if ((v = ymap_get(n, "cache_from")))
			b->cache_from = c_strlist(c, v, false);
		if ((v = ymap_get(n, "tags")))
			b->tags = c_strlist(c, v, false);
		if ((v = ymap_get(n, "secrets"))) {
			size_t l = cpath_push(c, "secrets");
			file_refs(c, v, &b->secrets, &b->n_secrets);
			cpath_pop(c, l);
		}
		if ((v = ymap_get(n, "no_cache")))
			c_bool(c, v, &b->no_cache);
		if ((v = ymap_get(n, "pull")))
			c_bool(c, v, &b->pull);
		b->shm_size = M_UNSET;
		if ((v = ymap_get(n, "shm_size"))) {
			size_t l = cpath_push(c, "shm_size");
			c_bytes(c, v, false, &b->shm_size);
			cpath_pop(c, l);
		}
		if (b->dockerfile && b->dockerfile_inline)
			cerr(c, n,
			     "dockerfile and dockerfile_inline are mutually "
			     "exclusive");
	}
	if (strstr(ctx, "://") || startswith(ctx, "git@"))
		b->context = (char *)ctx;
	else
		b->context = path_resolve(c->a, c->workdir, c->home, ctx);
}

void svc_logging(struct cctx *c, struct service *s, const struct ynode *n)
{
	static const char *const keys[] = {"driver", "options"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v;
	if ((v = ymap_get(n, "driver")))
		s->logging.driver = c_str(c, v);
	if ((v = ymap_get(n, "options")))
		c_kvlist(c, v, KV_OPTS, &s->logging.options);
}

const char *const m_blkio_lists[M_BLKIO_NLISTS] = {
    [M_BLKIO_WEIGHT_DEVICE] = "weight_device",
    [M_BLKIO_READ_BPS] = "device_read_bps",
    [M_BLKIO_WRITE_BPS] = "device_write_bps",
    [M_BLKIO_READ_IOPS] = "device_read_iops",
    [M_BLKIO_WRITE_IOPS] = "device_write_iops",
};

/* One list of blkio_config: {path, weight} or {path, rate} items. */
static void blkio_list(struct cctx *c, struct m_blkio *b, enum m_blkio_list k,
		       const struct ynode *n)
{
	if (!want_seq(c, n))
		return;
	const char *what = k == M_BLKIO_WEIGHT_DEVICE ? "weight" : "rate";
	const char *const keys[] = {"path", what};
	b->dev[k] = arena_new_array(c->a, struct m_blkio_dev, n->n ? n->n : 1);
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		const struct ynode *p, *v;
		struct m_blkio_dev d = {.pos = it->pos};
		bool ok = c_map(c, it);
		if (ok) {
			c_known_keys(c, it, keys, ARRAY_SIZE(keys));
			p = ymap_get(it, "path");
			v = ymap_get(it, what);
			if (!p || !v) {
				cerr(c, it, "needs a path and a %s", what);
				ok = false;
			}
		}
		if (ok && !(d.path = c_str(c, p)))
			ok = false;
		else if (ok && d.path[0] != '/') {
			cerr(c, p, "\"%s\" is not an absolute path",
			     shown_value(d.path));
			ok = false;
		}
		if (ok)
			ok = k == M_BLKIO_WEIGHT_DEVICE
				 ? c_int(c, v, 10, 1000, &d.value)
			     : k == M_BLKIO_READ_BPS || k == M_BLKIO_WRITE_BPS
				 ? c_bytes(c, v, false, &d.value)
				 : c_int(c, v, 0, INT64_MAX, &d.value);
		if (ok)
			b->dev[k][b->n_dev[k]++] = d;
		cpath_pop(c, l);
	}
}

void svc_blkio(struct cctx *c, struct service *s, const struct ynode *n)
{
	if (!c_map(c, n))
		return;
	const char *keys[1 + M_BLKIO_NLISTS] = {"weight"};
	memcpy(keys + 1, m_blkio_lists, sizeof(m_blkio_lists));
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *v = ymap_get(n, "weight");
	if (v) {
		size_t l = cpath_push(c, "weight");
		c_int(c, v, 10, 1000, &s->blkio.weight);
		cpath_pop(c, l);
	}
	for (int k = 0; k < M_BLKIO_NLISTS; k++) {
		if (!(v = ymap_get(n, m_blkio_lists[k])))
			continue;
		size_t l = cpath_push(c, "%s", m_blkio_lists[k]);
		blkio_list(c, &s->blkio, (enum m_blkio_list)k, v);
		cpath_pop(c, l);
	}
}

static const char *const ulimit_names[] = {
    "core",    "cpu",	   "data",   "fsize",	   "locks",
    "memlock", "msgqueue", "nice",   "nofile",	   "nproc",
    "rss",     "rtprio",   "rttime", "sigpending", "stack",
};

/* A ulimits mapping (a service's, a build's). */
static void ulimits_parse(struct cctx *c, const struct ynode *n,
			  struct m_ulimit **out, size_t *n_out)
{
	if (!c_map(c, n))
		return;
	*out = arena_new_array(c->a, struct m_ulimit, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		const char *name = n->k[i]->s;
		const struct ynode *v = n->v[i];
		size_t l = cpath_push(c, "%s", name);
		bool known = false;
		for (size_t j = 0; j < ARRAY_SIZE(ulimit_names); j++)
			known |= streq(name, ulimit_names[j]);
		struct m_ulimit u = {.name = (char *)name, .pos = n->k[i]->pos};
		bool ok = true;
		if (!known) {
			const char *near = did_you_mean(
			    name, ulimit_names, ARRAY_SIZE(ulimit_names));
			cerr(c, n->k[i], "unknown ulimit \"%s\"%s%s%s", name,
			     near ? " (did you mean \"" : "", near ? near : "",
			     near ? "\"?)" : "");
			ok = false;
		} else if (v->kind == Y_MAP) {
			static const char *const keys[] = {"soft", "hard"};
			c_known_keys(c, v, keys, ARRAY_SIZE(keys));
			const struct ynode *sv = ymap_get(v, "soft"),
					   *hv = ymap_get(v, "hard");
			if (!sv || !hv) {
				cerr(c, v, "needs both soft and hard");
				ok = false;
			} else {
				ok = c_int(c, sv, -1, INT64_MAX, &u.soft) &&
				     c_int(c, hv, -1, INT64_MAX, &u.hard);
				if (ok && u.hard >= 0 &&
				    (u.soft > u.hard || u.soft < 0)) {
					cerr(
					    c, v,
					    "soft limit %lld is above the hard "
					    "limit %lld",
					    (long long)u.soft,
					    (long long)u.hard);
					ok = false;
				}
			}
		} else {
			ok = c_int(c, v, -1, INT64_MAX, &u.soft);
			u.hard = u.soft;
		}
		if (ok)
			(*out)[(*n_out)++] = u;
		cpath_pop(c, l);
	}
}

void svc_ulimits(struct cctx *c, struct service *s, const struct ynode *n)
{
	ulimits_parse(c, n, &s->ulimits, &s->n_ulimits);
}

static void file_refs(struct cctx *c, const struct ynode *n,
		      struct m_file_ref **out, size_t *n_out)
{
	static const char *const keys[] = {"source", "target", "uid", "gid",
					   "mode"};
	if (!want_seq(c, n))
		return;
	*out = arena_new_array(c->a, struct m_file_ref, n->n ? n->n : 1);
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		struct m_file_ref r = {.mode = M_UNSET, .pos = it->pos};
		const struct ynode *v;
		if (it->kind == Y_SCALAR) {
			r.source = it->s;
		} else if (c_map(c, it)) {
			c_known_keys(c, it, keys, ARRAY_SIZE(keys));
			if ((v = ymap_get(it, "source")))
				r.source = c_str(c, v);
			if ((v = ymap_get(it, "target")))
				r.target = c_str(c, v);
			if ((v = ymap_get(it, "uid")))
				r.uid = c_str(c, v);
			if ((v = ymap_get(it, "gid")))
				r.gid = c_str(c, v);
			if ((v = ymap_get(it, "mode"))) {
				const char *s = v->kind == Y_SCALAR ? v->s : "";
				char *end;
				long m = strtol(s, &end, s[0] == '0' ? 8 : 10);
				if (!*s || *end || m < 0 || m > 07777)
					cerr(c, v, "invalid mode \"%s\"",
					     shown_value(v->s));
				else
					r.mode = m;
			}
			if (!r.source)
				cerr(c, it, "source is required");
		}
		if (r.source)
			(*out)[(*n_out)++] = r;
		cpath_pop(c, l);
	}
}

void svc_configs(struct cctx *c, struct service *s, const struct ynode *n)
{
	file_refs(c, n, &s->configs, &s->n_configs);
}

void svc_secrets(struct cctx *c, struct service *s, const struct ynode *n)
{
	file_refs(c, n, &s->secrets, &s->n_secrets);
}
