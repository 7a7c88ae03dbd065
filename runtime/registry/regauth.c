/* Registry credentials, kept as docker keeps them: the "auths" object of
 * $DOCKER_CONFIG/config.json (else ~/.docker/config.json), each entry
 * {"auth": base64("user:password")}, so that a user logged in with
 * docker is logged in here too.  Other keys of the file are kept as they
 * are.  Credential helpers (credsStore) are not used. */
#include "runtime/registry/registry_impl.h"

#include "common/lazylib/lazylib.h"
#include <pwd.h>

char *docker_config_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG");
	if (dir && *dir)
		return path_join(dir, "config.json");
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(host_uid());
		home = pw ? pw->pw_dir : "/";
	}
	return xasprintf("%s/.docker/config.json", home);
}

const char *docker_auth_key(const char *domain)
{
	if (streq(domain, "docker.io") || streq(domain, "index.docker.io") ||
	    streq(domain, "registry-1.docker.io"))
		return "https://index.docker.io/v1/";
	return domain;
}

static int config_read(const char *path, json_t **out, struct orch_err *e)
{
	if (access(path, F_OK) < 0) {
		*out = json_object();
		return 0;
	}
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(e, EINVAL, "%s:%d:%d: %s", path, je.line,
			       je.column, je.text);
	}
	*out = j;
	return 0;
}

/* The entry for domain: its key as docker writes it, or with a scheme
 * in front (older docker versions wrote "https://host"). */
static json_t *auth_entry(json_t *auths, const char *domain)
{
	json_t *v = json_object_get(auths, docker_auth_key(domain));
	if (v)
		return v;
	_cleanup_free_ char *https = xasprintf("https://%s", domain);
	v = json_object_get(auths, https);
	if (v)
		return v;
	_cleanup_free_ char *http = xasprintf("http://%s", domain);
	return json_object_get(auths, http);
}

int creds_lookup(const char *domain, char **user, char **pass,
		 struct orch_err *e)
{
	*user = *pass = NULL;
	_cleanup_free_ char *path = docker_config_path();
	json_t *cfg;
	int r = config_read(path, &cfg, e);
	if (r < 0)
		return r;
	json_t *ent = auth_entry(json_object_get(cfg, "auths"), domain);
	const char *b64 = json_string_value(json_object_get(ent, "auth"));
	if (!b64 || !*b64) {
		json_decref(cfg);
		return 0;
	}
	size_t n = strlen(b64);
	_cleanup_free_ unsigned char *raw = xmalloc(n + 1);
	int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (n > 0 && b64[n - 1] == '=' && len > 0) {
		n--;
		len--;
	}
	json_decref(cfg); /* b64 was in it */
	if (len < 0)
		return err_set(e, EINVAL, "%s: the auth of %s is not base64",
			       path, domain);
	raw[len] = '\0';
	char *colon = strchr((char *)raw, ':');
	if (!colon)
		return err_set(e, EINVAL,
			       "%s: the auth of %s is not user:password", path,
			       domain);
	*user = xstrndup((char *)raw, (size_t)(colon - (char *)raw));
	*pass = xstrdup(colon + 1);
	return 0;
}

static int config_write(const char *path, json_t *cfg, struct orch_err *e)
{
	_cleanup_free_ char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		int r = mkdir_p(dir, 0700, e);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *s = json_dumps(cfg, JSON_INDENT(8));
	_cleanup_free_ char *text = xasprintf("%s\n", s);
	return write_file_atomic(path, text, strlen(text), 0600, e);
}

int creds_store(const char *domain, const char *user, const char *pass,
		struct orch_err *e)
{
	_cleanup_free_ char *path = docker_config_path();
	json_t *cfg;
	int r = config_read(path, &cfg, e);
	if (r < 0)
		return r;
	_cleanup_free_ char *plain = xasprintf("%s:%s", user, pass);
	size_t n = strlen(plain);
	_cleanup_free_ char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)plain, (int)n);
	json_t *auths = json_object_get(cfg, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(cfg, "auths", auths);
	}
	json_t *ent = json_object();
	json_object_set_new(ent, "auth", json_string(b64));
	json_object_set_new(auths, docker_auth_key(domain), ent);
	r = config_write(path, cfg, e);
	json_decref(cfg);
	return r;
}

int creds_erase(const char *domain, struct orch_err *e)
{
	_cleanup_free_ char *path = docker_config_path();
	json_t *cfg;
	int r = config_read(path, &cfg, e);
	if (r < 0)
		return r;
	json_t *auths = json_object_get(cfg, "auths");
	const char *key = docker_auth_key(domain);
	_cleanup_free_ char *https = xasprintf("https://%s", domain);
	int removed = 0;
	if (json_object_get(auths, key)) {
		json_object_del(auths, key);
		removed = 1;
	}
	if (json_object_get(auths, https)) {
		json_object_del(auths, https);
		removed = 1;
	}
	if (removed)
		r = config_write(path, cfg, e);
	json_decref(cfg);
	return r < 0 ? r : removed;
}

/* ---- public: login / logout ------------------------------------------- */

int rt_registry_login(const char *registry, const char *user, const char *pass,
		      struct orch_err *e)
{
	const char *domain = registry && *registry ? registry : "docker.io";
	struct reg_client *c;
	int r = reg_open(domain, "", "pull", user, pass, &c, e);
	if (r < 0)
		return err_wrap(e, "logging in to %s", domain);
	r = reg_check_login(c, e);
	reg_close(c);
	if (r < 0)
		return r;
	return creds_store(domain, user, pass, e);
}

int rt_registry_logout(const char *registry, struct orch_err *e)
{
	return creds_erase(registry && *registry ? registry : "docker.io", e);
}
