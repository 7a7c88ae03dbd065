/* Running an image: its entrypoint and command, environment, working
 * directory, user (resolved in its own /etc/passwd and /etc/group) and
 * layers applied to a container spec, where the spec does not set them. */
#include "runtime/runtime.h"

#include <ctype.h>
#include <sys/stat.h>

/* The uppermost layer's copy of file (e.g. "etc/passwd"), NULL when absent
 * or deleted by a whiteout. */
static char *image_file(const struct rt_image *img, const char *file)
{
	_cleanup_strv_ char **lowers = rt_image_lowers(img);
	for (size_t i = 0; lowers[i]; i++) {
		_cleanup_free_ char *p = path_join(lowers[i], file);
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		if (!S_ISREG(st.st_mode))
			return NULL;
		char *data = NULL;
		if (read_file(p, &data, NULL, NULL) < 0)
			return NULL;
		return data;
	}
	return NULL;
}

/* Finds name in a passwd/group file: field 3 (the id) and, for passwd,
 * field 4 (the primary group). */
static bool db_lookup(const char *db, const char *name, unsigned long *id,
		      unsigned long *gid)
{
	size_t n = strlen(name);
	for (const char *l = db; l && *l;) {
		const char *end = strchrnul(l, '\n');
		if (strncmp(l, name, n) == 0 && l[n] == ':') {
			const char *f = strchr(l + n + 1, ':');
			if (f && f < end) {
				char *rest;
				*id = strtoul(f + 1, &rest, 10);
				if (gid && *rest == ':')
					*gid = strtoul(rest + 1, NULL, 10);
				return true;
			}
		}
		l = *end ? end + 1 : end;
	}
	return false;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* USER[:GROUP], each a number or a name in the image's databases. */
static int image_user(const struct rt_image *img, const char *spec, uid_t *uid,
		      gid_t *gid, struct orch_err *e)
{
	_cleanup_free_ char *user = xstrdup(spec);
	char *group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	unsigned long u = 0, g = 0;
	if (all_digits(user)) {
		u = strtoul(user, NULL, 10);
		_cleanup_free_ char *pw = image_file(img, "etc/passwd");
		/* The uid's primary group in passwd, else 0 (docker's). */
		for (const char *l = pw; l && *l;) {
			const char *end = strchrnul(l, '\n');
			unsigned long lu, lg;
			if (sscanf(l, "%*[^:]:%*[^:]:%lu:%lu", &lu, &lg) == 2 &&
			    lu == u) {
				g = lg;
				break;
			}
			l = *end ? end + 1 : end;
		}
	} else {
		_cleanup_free_ char *pw = image_file(img, "etc/passwd");
		if (!db_lookup(pw, user, &u, &g))
			return err_set(e, ENOENT,
				       "user \"%s\" is not in the image's "
				       "/etc/passwd",
				       user);
	}
	if (group) {
		if (all_digits(group)) {
			g = strtoul(group, NULL, 10);
		} else {
			_cleanup_free_ char *gr = image_file(img, "etc/group");
			if (!db_lookup(gr, group, &g, NULL))
				return err_set(e, ENOENT,
					       "group \"%s\" is not in the "
					       "image's /etc/group",
					       group);
		}
	}
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 0;
}

static bool env_has_key(char *const *env, const char *kv)
{
	size_t n = strcspn(kv, "=");
	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], kv, n) == 0 &&
		    (env[i][n] == '=' || env[i][n] == '\0'))
			return true;
	return false;
}

int rt_image_apply(const struct rt_image *img, struct rt_spec *s,
		   bool keep_user, struct orch_err *e)
{
	const struct rt_image_config *c = &img->config;
	char **argv = xcalloc(1, sizeof(char *));
	for (size_t i = 0; c->entrypoint && c->entrypoint[i]; i++)
		strv_push(&argv, c->entrypoint[i]);
	char *const *cmd = strv_len(s->argv) ? s->argv : c->cmd;
	for (size_t i = 0; cmd && cmd[i]; i++)
		strv_push(&argv, cmd[i]);
	if (!argv[0]) {
		strv_free(argv);
		return err_set(e, EINVAL,
			       "image %.12s has no command (Entrypoint or Cmd) "
			       "and none was given",
			       img->id);
	}
	if (!keep_user && c->user) {
		int r = image_user(img, c->user, &s->uid, &s->gid, e);
		if (r < 0) {
			strv_free(argv);
			return err_wrap(e, "image %.12s", img->id);
		}
	}
	strv_free(s->argv);
	s->argv = argv;
	/* The image's variables first, the caller's over them. */
	char **env = xcalloc(1, sizeof(char *));
	for (size_t i = 0; c->env && c->env[i]; i++)
		if (!env_has_key(s->env, c->env[i]))
			strv_push(&env, c->env[i]);
	for (size_t i = 0; s->env && s->env[i]; i++)
		strv_push(&env, s->env[i]);
	if (!env_has_key(env, "PATH="))
		strv_push(&env, "PATH=/usr/local/sbin:/usr/local/bin:"
				"/usr/sbin:/usr/bin:/sbin:/bin");
	strv_free(s->env);
	s->env = env;
	if (!s->workdir && c->workdir)
		s->workdir = c->workdir;
	if (!s->rootfs && !strv_len(s->lowers)) {
		strv_free(s->lowers);
		s->lowers = rt_image_lowers(img);
	}
	s->image = img->id;
	return 0;
}
