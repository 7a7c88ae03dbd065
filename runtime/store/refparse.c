/* Image references, parsed exactly as docker parses them
 * (distribution/reference's grammar and its "normalized" names):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path
 *   domain    := host [ ":" port ]        (a host may be "[v6 address]")
 *
 * The first component is a registry only if it contains '.' or ':', is
 * "localhost", or has an uppercase letter; otherwise the name is on
 * docker.io, where a one-component path gets "library/" in front.  Pure:
 * no I/O. */
#include "runtime/store/store_impl.h"

#include <ctype.h>

#define DOCKER_DOMAIN  "docker.io"
#define NAME_TOTAL_MAX 255

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool path_component_valid(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		if (s[i] == '.')
			j = i + 1;
		else if (s[i] == '_')
			j = (i + 1 < n && s[i + 1] == '_') ? i + 2 : i + 1;
		else if (s[i] == '-')
			while (j < n && s[j] == '-')
				j++;
		else
			return false;
		if (j >= n || !is_lower_alnum(s[j]))
			return false;
		i = j;
	}
	return true;
}

static bool path_valid(const char *path)
{
	const char *p = path;
	for (;;) {
		const char *end = strchrnul(p, '/');
		if (!path_component_valid(p, (size_t)(end - p)))
			return false;
		if (!*end)
			return true;
		p = end + 1;
	}
}

/* domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool host_valid(const char *s, size_t n)
{
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		for (size_t i = 1; i + 1 < n; i++)
			if (!isxdigit((unsigned char)s[i]) && s[i] != ':')
				return false;
		return n > 2;
	}
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		size_t len = i - start;
		if (len == 0 || !isalnum((unsigned char)s[start]) ||
		    !isalnum((unsigned char)s[i - 1]))
			return false;
		for (size_t k = start; k < i; k++)
			if (!isalnum((unsigned char)s[k]) && s[k] != '-')
				return false;
		start = i + 1;
	}
	return true;
}

static bool domain_valid(const char *d)
{
	const char *colon = NULL;
	if (d[0] == '[') {
		const char *close = strchr(d, ']');
		if (!close)
			return false;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return false;
	} else {
		colon = strchr(d, ':');
	}
	size_t hn = colon ? (size_t)(colon - d) : strlen(d);
	if (!host_valid(d, hn))
		return false;
	if (!colon)
		return true;
	const char *port = colon + 1;
	if (!*port)
		return false;
	for (const char *p = port; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/* tag := [\w][\w.-]{0,127} */
static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || t[0] == '.' || t[0] == '-')
		return false;
	for (const char *p = t; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' &&
		    *p != '-')
			return false;
	return true;
}

bool digest_valid(const char *d)
{
	if (startswith(d, "sha256:"))
		return strlen(d + 7) == 64 && is_hex_string(d + 7, 64);
	if (startswith(d, "sha512:"))
		return strlen(d + 7) == 128 && is_hex_string(d + 7, 128);
	return false;
}

void image_ref_clear(struct image_ref *r)
{
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

static int ref_fail(struct orch_err *e, const char *ref, const char *why)
{
	return err_set(e, EINVAL, "invalid reference format \"%s\": %s", ref,
		       why);
}

/* Splits "name[:tag][@digest]" into its parts (allocated into r). */
static int ref_split(const char *ref, struct image_ref *r, char **name,
		     struct orch_err *e)
{
	_cleanup_free_ char *s = xstrdup(ref);
	char *at = strchr(s, '@');
	if (at) {
		*at = '\0';
		if (!digest_valid(at + 1))
			return ref_fail(e, ref,
					"a digest is sha256: and 64 "
					"lowercase hex digits");
		r->digest = xstrdup(at + 1);
	}
	char *slash = strrchr(s, '/');
	char *colon = strrchr(slash ? slash : s, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1))
			return ref_fail(e, ref,
					"a tag is up to 128 letters, digits, "
					"'_', '.' or '-', not starting with "
					"'.' or '-'");
		r->tag = xstrdup(colon + 1);
	}
	*name = move_ptr(s);
	return 0;
}

/* Whether the first component of name (up to its '/') is a registry, as
 * docker reads it: with a '.' or a ':', "localhost", or an uppercase
 * letter. */
static bool names_domain(const char *name)
{
	size_t n = strcspn(name, "/");
	if (!name[n])
		return false;
	bool yes = memchr(name, '.', n) || memchr(name, ':', n) ||
		   (n == 9 && startswith(name, "localhost"));
	for (size_t i = 0; i < n && !yes; i++)
		yes = isupper((unsigned char)name[i]);
	return yes;
}

int image_ref_parse(const char *ref, struct image_ref *r, struct orch_err *e)
{
	memset(r, 0, sizeof(*r));
	if (!*ref)
		return ref_fail(e, ref, "empty");
	_cleanup_free_ char *name = NULL;
	int rc = ref_split(ref, r, &name, e);
	if (rc < 0) {
		image_ref_clear(r);
		return rc;
	}
	if (strlen(name) > NAME_TOTAL_MAX) {
		image_ref_clear(r);
		return ref_fail(e, ref, "the name is longer than 255 bytes");
	}
	char *slash = strchr(name, '/');
	if (slash && names_domain(name)) {
		r->domain = xstrndup(name, (size_t)(slash - name));
		r->path = xstrdup(slash + 1);
	} else {
		r->domain = xstrdup(DOCKER_DOMAIN);
		r->path = xstrdup(name);
	}
	if (streq(r->domain, "index.docker.io")) {
		free(r->domain);
		r->domain = xstrdup(DOCKER_DOMAIN);
	}
	if (!domain_valid(r->domain)) {
		image_ref_clear(r);
		return ref_fail(e, ref,
				"the registry is not a valid host[:port]");
	}
	for (const char *p = r->path; *p; p++)
		if (isupper((unsigned char)*p)) {
			image_ref_clear(r);
			return ref_fail(e, ref,
					"repository name must be lowercase");
		}
	if (!path_valid(r->path)) {
		image_ref_clear(r);
		return ref_fail(e, ref,
				"a repository name is lowercase letters and "
				"digits separated by '/', '.', '_' or '-'");
	}
	if (streq(r->domain, DOCKER_DOMAIN) && !strchr(r->path, '/')) {
		char *p = xasprintf("library/%s", r->path);
		free(r->path);
		r->path = p;
	}
	/* An official image is named without "library/": one named as an
	 * image id would read as that id. */
	if (streq(r->domain, DOCKER_DOMAIN) && startswith(r->path, "library/") &&
	    strlen(r->path) == 8 + 64 && is_hex_string(r->path + 8, 64)) {
		image_ref_clear(r);
		return ref_fail(e, ref,
				"a repository name cannot be 64 hexadecimal "
				"digits");
	}
	if (!r->tag && !r->digest)
		r->tag = xstrdup("latest");
	return 0;
}

char *image_ref_familiar(const struct image_ref *r)
{
	/* Docker Hub's name is left out, unless the path would then read
	 * as naming a registry ("docker.io/index.docker.io/x"). */
	if (!streq(r->domain, DOCKER_DOMAIN) || names_domain(r->path))
		return xasprintf("%s/%s", r->domain, r->path);
	const char *p = r->path;
	if (startswith(p, "library/") && !strchr(p + 8, '/'))
		p += 8;
	return xstrdup(p);
}

char *image_ref_repo(const struct image_ref *r)
{
	return xasprintf("%s/%s", r->domain, r->path);
}

const char *image_ref_registry_host(const struct image_ref *r)
{
	return streq(r->domain, DOCKER_DOMAIN) ? "registry-1.docker.io"
					       : r->domain;
}

char *image_ref_string(const struct image_ref *r)
{
	_cleanup_free_ char *fam = image_ref_familiar(r);
	return xasprintf("%s%s%s%s%s", fam, r->tag ? ":" : "",
			 r->tag ? r->tag : "", r->digest ? "@" : "",
			 r->digest ? r->digest : "");
}

bool registry_allows_http(const char *domain)
{
	_cleanup_free_ char *host = NULL;
	if (domain[0] == '[') {
		const char *close = strchr(domain, ']');
		host = xstrndup(domain + 1,
				close ? (size_t)(close - domain - 1) : 0);
		return streq(host, "::1");
	}
	host = xstrndup(domain, strcspn(domain, ":"));
	if (streq(host, "localhost"))
		return true;
	unsigned a, b, c, d;
	char extra;
	return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 &&
	       a == 127 && b < 256 && c < 256 && d < 256;
}

/* ---- store keys -------------------------------------------------------- */

int image_ref_normalize(const char *ref, char **out, struct orch_err *e)
{
	struct image_ref r;
	int rc = image_ref_parse(ref, &r, e);
	if (rc < 0)
		return rc;
	_cleanup_free_ char *fam = image_ref_familiar(&r);
	/* A digest names the content: with one, the tag says nothing more
	 * (docker looks up name@digest alone too). */
	if (r.digest)
		*out = xasprintf("%s@%s", fam, r.digest);
	else
		*out = xasprintf("%s:%s", fam, r.tag);
	image_ref_clear(&r);
	return 0;
}
