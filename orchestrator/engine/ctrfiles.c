/* A container's secrets and configs (compose's `secrets:` and `configs:`
 * of a service): each one a read-only file at its target.  A config's
 * file is bound as it is (as compose binds it: edits show).  A secret,
 * content, an environment variable's value, or a file given an owner or
 * a mode is written to the container's own directory under the
 * project's (on ORCH_RUN, a tmpfs on a real host: never on the disk),
 * owned and moded as asked (by default root's, 0444, as compose makes
 * them), and bound from there: a secret file is most often readable by
 * the host's root alone, which a remapped container's root is not.
 * ctr_teardown removes that directory with the container's /etc files. */
#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <sys/stat.h>

/* The target in the container: as given when absolute, else under
 * /run/secrets (secrets) or / (configs), as compose places them. */
static char *file_target(const struct m_file_ref *r, bool secret)
{
	const char *t = r->target ? r->target : r->source;
	if (t[0] == '/')
		return xstrdup(t);
	return xasprintf("%s%s", secret ? "/run/secrets/" : "/", t);
}

#define IDS_NOT_NUMBERS "%s: uid and gid are numbers (not \"%s\", \"%s\")"

/* A uid or gid of compose's (a number, as a string) in the container,
 * def when not given. */
static int file_id(const char *s, uint32_t def, uint32_t *out)
{
	if (!s) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT32_MAX - 1 || s[0] == '-')
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Writes the file of r (its data) to path, owned and moded as r asks,
 * its ids moved through the container's maps. */
static int file_write(const char *path, const char *what,
		      const struct m_file_ref *r, const char *data, size_t len,
		      const struct rt_ids *ids, struct orch_err *e)
{
	uint32_t uid, gid, hu, hg;
	if (file_id(r->uid, 0, &uid) < 0 || file_id(r->gid, 0, &gid) < 0)
		return err_set(e, EINVAL, IDS_NOT_NUMBERS, what, r->uid ?: "",
			       r->gid ?: "");
	if (!rt_idmap_find(ids->uid, ids->n_uid, uid, false, &hu) ||
	    !rt_idmap_find(ids->gid, ids->n_gid, gid, false, &hg))
		return err_set(e, EINVAL,
			       "%s: uid %u or gid %u is not mapped in the "
			       "container's user namespace",
			       what, uid, gid);
	mode_t mode = r->mode >= 0 ? (mode_t)r->mode : 0444;
	int r2 = write_file_atomic(path, data, len, 0600, e);
	if (r2 < 0)
		return err_wrap(e, "%s", what);
	if (chown(path, hu, hg) < 0 || chmod(path, mode) < 0)
		return err_sys(e, errno, "%s: setting the owner and mode of %s",
			       what, path);
	return 0;
}

/* The data of a file source: a regular file only (never a FIFO or a
 * device, which could be read forever). */
static int source_read(const char *what, const char *file, char **data,
		       size_t *len, struct orch_err *e)
{
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_sys(e, errno, "%s: %s", what, file);
	if (!S_ISREG(st.st_mode))
		return err_set(e, EINVAL, "%s: %s is not a regular file", what,
			       file);
	return read_fd(fd, file, data, len, e) < 0 ? err_wrap(e, "%s", what)
						   : 0;
}

/* Whether o (what) can be had: defined, not a swarm's, its variable set,
 * its file there. */
static int source_ok(const struct m_file_obj *o, const char *what, bool secret,
		     struct orch_err *e)
{
	struct stat st;
	if (!o)
		return err_set(e, ENOENT, "%s is not defined", what);
	if (o->external)
		return err_set(e, ENOTSUP,
			       "%s is external: a swarm's, which orch does not "
			       "have (give it a file, an environment "
			       "variable%s)",
			       what, secret ? "" : " or content");
	if (o->environment && !o->env_value)
		return err_set(e, ENOENT,
			       "%s: environment variable %s is not set", what,
			       o->environment);
	if (o->file && stat(o->file, &st) < 0)
		return err_sys(e, errno, "%s: %s", what, o->file);
	return 0;
}

static int one_file(const struct m_file_ref *r, const struct m_file_obj *o,
		    bool secret, const char *dir, size_t idx, bool idmap,
		    const struct rt_ids *ids, json_t *mounts,
		    struct orch_err *e)
{
	const char *kind = secret ? "secret" : "config";
	_cleanup_free_ char *what = xasprintf("%s %s", kind, r->source);
	int r2 = source_ok(o, what, secret, e);
	if (r2 < 0)
		return r2;
	_cleanup_free_ char *target = file_target(r, secret);
	bool attrs = r->uid || r->gid || r->mode >= 0;
	if (o->file && !attrs && !secret) {
		json_t *j =
		    json_pack("{s:s, s:s, s:s, s:b}", "type", "bind", "source",
			      o->file, "target", target, "readonly", 1);
		if (idmap)
			json_object_set_new(j, "idmap", json_true());
		json_array_append_new(mounts, j);
		return 0;
	}
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	if (o->file) {
		r2 = source_read(what, o->file, &data, &len, e);
		if (r2 < 0)
			return r2;
	} else if (o->content || o->env_value) {
		data = xstrdup(o->content ? o->content : o->env_value);
		len = strlen(data);
	} else {
		return err_set(e, EINVAL, "%s has no source", what);
	}
	_cleanup_free_ char *path = xasprintf("%s/%zu", dir, idx);
	r2 = file_write(path, what, r, data, len, ids, e);
	if (r2 < 0)
		return r2;
	json_array_append_new(
	    mounts, json_pack("{s:s, s:s, s:s, s:b}", "type", "bind", "source",
			      path, "target", target, "readonly", 1));
	return 0;
}

/* s's k-th file, its secrets first: its reference and the object it
 * names (NULL when undefined); whether it is a secret. */
static bool file_at(const struct project *m, const struct service *s, size_t k,
		    const struct m_file_ref **ref,
		    const struct m_file_obj **obj)
{
	bool secret = k < s->n_secrets;
	*ref = secret ? &s->secrets[k] : &s->configs[k - s->n_secrets];
	const struct m_file_obj *v = secret ? m->secrets : m->configs;
	size_t n = secret ? m->n_secrets : m->n_configs;
	*obj = NULL;
	for (size_t i = 0; i < n && !*obj; i++)
		if (streq(v[i].key, (*ref)->source))
			*obj = &v[i];
	return secret;
}

int ctr_files(struct pstate *ps, const struct project *m, json_t *rec,
	      const struct rt_ids *ids, json_t *mounts, struct orch_err *e)
{
	const struct service *s =
	    m ? project_service(m, jstr(rec, "service") ?: "") : NULL;
	if (!s || (!s->n_secrets && !s->n_configs))
		return 0;
	_cleanup_free_ char *dir =
	    xasprintf("%s/etc/%s/files", ps->dir, jstr(rec, "name"));
	int r = mkdir_p(dir, 0700, e);
	if (r < 0)
		return r;
	bool idmap = jbool(json_object_get(rec, "spec"), "userns");
	for (size_t k = 0; r == 0 && k < s->n_secrets + s->n_configs; k++) {
		const struct m_file_ref *ref;
		const struct m_file_obj *o;
		bool secret = file_at(m, s, k, &ref, &o);
		r = one_file(ref, o, secret, dir, k, idmap, ids, mounts, e);
	}
	return r < 0 ? err_wrap(e, "service %s", s->name) : 0;
}

int check_files(const struct project *m, json_t *new_recs, struct orch_err *e)
{
	size_t i;
	json_t *rec;
	json_array_foreach(new_recs, i, rec)
	{
		const struct service *s =
		    project_service(m, jstr(rec, "service") ?: "");
		for (size_t k = 0; s && k < s->n_secrets + s->n_configs; k++) {
			const struct m_file_ref *r;
			const struct m_file_obj *o;
			bool secret = file_at(m, s, k, &r, &o);
			_cleanup_free_ char *what = xasprintf(
			    "%s %s", secret ? "secret" : "config", r->source);
			int r2 = source_ok(o, what, secret, e);
			uint32_t id;
			if (r2 == 0 && (file_id(r->uid, 0, &id) < 0 ||
					file_id(r->gid, 0, &id) < 0))
				r2 = err_set(e, EINVAL, IDS_NOT_NUMBERS, what,
					     r->uid ?: "", r->gid ?: "");
			if (r2 < 0)
				return err_wrap(e, "service %s", s->name);
		}
	}
	return 0;
}
