/* The HTTP side of the registry client, on libcurl.
 *
 * A client is one repository of one registry.  Opening it pings /v2/:
 * that chooses the scheme (https; plain http only for localhost,
 * 127.0.0.0/8, [::1] and the registries configured as insecure, see
 * regconf.c) and learns the registry's challenge.  Basic
 * credentials (from the docker config) are sent as they are; a Bearer
 * challenge is answered with a token from its realm, scoped to the
 * repository, and that token is reused for every request of the client
 * until a 401 asks for a fresh one.  Credentials go through curl's own
 * auth options, which curl never sends to another host on a redirect.
 * TLS is verified against the system CAs plus certs.d/<host:port>/ca.crt
 * ($ORCH_ROOT/certs.d, /etc/docker/certs.d, /etc/containers/certs.d). */
#include "runtime/registry/registry_impl.h"

#include <ctype.h>
#include <sys/socket.h>
#include <time.h>

#define ATTEMPTS 4

struct reg_client {
	char *domain;  /* as written in the reference */
	char *host;    /* where to connect */
	char *path;    /* repository */
	char *actions; /* token scope actions */
	char *base;    /* "https://host" once pinged */
	char *user, *pass;
	bool insecure; /* TLS not verified */
	char *cafile, *certfile, *keyfile;
	struct auth_challenge chal;
	pthread_mutex_t lock; /* token and chal */
	char *token;
	/* Held while a token is asked for: parallel requests wait for it
	 * rather than each asking. */
	pthread_mutex_t token_fetch;
	char **extra_scopes; /* asked for with the repository's */
};

/* ---- bounded parallelism ----------------------------------------------- */

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slots_cond = PTHREAD_COND_INITIALIZER;
static int slots_used, slots_max;

void reg_slot_take(void)
{
	pthread_mutex_lock(&slots_lock);
	if (!slots_max) {
		const char *v = getenv("ORCH_PULL_JOBS");
		slots_max = v && atoi(v) > 0 ? atoi(v) : 4;
	}
	while (slots_used >= slots_max)
		pthread_cond_wait(&slots_cond, &slots_lock);
	slots_used++;
	pthread_mutex_unlock(&slots_lock);
}

void reg_slot_give(void)
{
	pthread_mutex_lock(&slots_lock);
	slots_used--;
	pthread_cond_signal(&slots_cond);
	pthread_mutex_unlock(&slots_lock);
}

/* ---- pure helpers ------------------------------------------------------ */

void auth_challenge_clear(struct auth_challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	memset(c, 0, sizeof(*c));
}

/* Reads one token or quoted string at *p. */
static char *challenge_value(const char **p)
{
	const char *s = *p;
	struct strbuf sb;
	sb_init(&sb);
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			sb_add(&sb, s, 1);
		}
		if (*s == '"')
			s++;
	} else {
		size_t n = strcspn(s, ", \t");
		sb_add(&sb, s, n);
		s += n;
	}
	*p = s;
	if (!sb.len)
		sb_add(&sb, "", 0);
	return sb_steal(&sb);
}

int auth_challenge_parse(const char *hdr, struct auth_challenge *c)
{
	memset(c, 0, sizeof(*c));
	const char *p = hdr;
	while (isspace((unsigned char)*p))
		p++;
	size_t n = strcspn(p, " \t");
	if (n == 0)
		return -EINVAL;
	c->scheme = xstrndup(p, n);
	for (char *q = c->scheme; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	p += n;
	for (;;) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		size_t kn = strcspn(p, "= \t,");
		if (p[kn] != '=') {
			p += kn;
			continue;
		}
		_cleanup_free_ char *key = xstrndup(p, kn);
		p += kn + 1;
		char *val = challenge_value(&p);
		char **slot = strcasecmp(key, "realm") == 0	? &c->realm
			      : strcasecmp(key, "service") == 0 ? &c->service
			      : strcasecmp(key, "scope") == 0	? &c->scope
								: NULL;
		if (slot) {
			free(*slot);
			*slot = val;
		} else {
			free(val);
		}
	}
	return 0;
}

/* ---- configuration ----------------------------------------------------- */

/* The first certs.d directory that has files for domain. */
static void find_certs(struct reg_client *c)
{
	_cleanup_free_ char *own = path_join(orch_root(), "certs.d");
	const char *dirs[] = {own, "/etc/docker/certs.d",
			      "/etc/containers/certs.d"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char *ca = xasprintf("%s/%s/ca.crt", dirs[i], c->domain);
		char *cert = xasprintf("%s/%s/client.cert", dirs[i], c->domain);
		char *key = xasprintf("%s/%s/client.key", dirs[i], c->domain);
		bool any = access(ca, R_OK) == 0 || access(cert, R_OK) == 0;
		if (any && access(ca, R_OK) == 0)
			c->cafile = move_ptr(ca);
		if (any && access(cert, R_OK) == 0 && access(key, R_OK) == 0) {
			c->certfile = move_ptr(cert);
			c->keyfile = move_ptr(key);
		}
		free(ca);
		free(cert);
		free(key);
		if (any)
			return;
	}
}

/* ---- one HTTP exchange ------------------------------------------------- */

struct xfer {
	const struct reg_req *req;
	struct reg_resp *resp;
	struct strbuf body;
	bool too_big;
	int64_t skip;	/* bytes already streamed (resumed transfer) */
	int64_t sent;	/* bytes streamed to sink_fd in total */
	bool sink_err;	/* the reader went away */
	bool streaming; /* this answer's body goes to sink_fd */
	int64_t upload_off;
};

static char *header_value(const char *line, size_t n, const char *name)
{
	size_t kn = strlen(name);
	if (n <= kn + 1 || strncasecmp(line, name, kn) != 0 || line[kn] != ':')
		return NULL;
	const char *v = line + kn + 1, *end = line + n;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	return xstrndup(v, (size_t)(end - v));
}

static void set_header(char **slot, char *v)
{
	if (!v)
		return;
	free(*slot);
	*slot = v;
}

static size_t on_header(char *buf, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;
	if (startswith(buf, "HTTP/")) {
		/* A new answer (after a redirect or a 100): forget the last. */
		const char *sp = memchr(buf, ' ', len);
		long code = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->body.len = 0;
		x->too_big = false;
		x->streaming = x->req->to_sink && (code == 200 || code == 206);
		/* A server that ignores Range sends everything again. */
		x->skip = code == 200 ? x->sent : 0;
		return len;
	}
	set_header(&x->resp->content_type,
		   header_value(buf, len, "Content-Type"));
	set_header(&x->resp->digest,
		   header_value(buf, len, "Docker-Content-Digest"));
	set_header(&x->resp->location, header_value(buf, len, "Location"));
	set_header(&x->resp->range, header_value(buf, len, "Range"));
	set_header(&x->resp->www_auth,
		   header_value(buf, len, "WWW-Authenticate"));
	return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	size_t len = size * n;
	if (x->streaming) {
		const char *p = buf;
		size_t left = len;
		if (x->skip > 0) {
			size_t drop =
			    (size_t)x->skip < left ? (size_t)x->skip : left;
			x->skip -= (int64_t)drop;
			p += drop;
			left -= drop;
		}
		const struct reg_req *rq = x->req;
		if (rq->sink_size >= 0 &&
		    x->sent + (int64_t)left > rq->sink_size)
			return 0; /* more than the descriptor says */
		while (left > 0) {
			ssize_t w = send(rq->sink_fd, p, left, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				x->sink_err = true;
				return 0;
			}
			p += w;
			left -= (size_t)w;
			x->sent += w;
		}
		return len;
	}
	size_t cap = x->req->limit ? x->req->limit : 65536;
	if (x->body.len + len > cap) {
		x->too_big = true;
		return x->req->limit ? 0 : len;
	}
	sb_add(&x->body, buf, len);
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *data)
{
	struct xfer *x = data;
	const struct reg_req *rq = x->req;
	size_t want = size * n;
	size_t left = rq->body_len - (size_t)x->upload_off;
	if (want > left)
		want = left;
	if (want == 0)
		return 0;
	if (rq->body) {
		memcpy(buf, (const char *)rq->body + x->upload_off, want);
	} else {
		ssize_t r = RETRY_EINTR(
		    pread(rq->body_fd, buf, want, (off_t)x->upload_off));
		if (r < 0)
			return CURL_READFUNC_ABORT;
		want = (size_t)r;
	}
	x->upload_off += (int64_t)want;
	return want;
}

static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	struct xfer *x = data;
	if (!x->req->progress)
		return 0;
	return x->req->progress(x->req->progress_ctx,
				x->req->to_sink ? x->sent : x->upload_off);
}

void reg_resp_clear(struct reg_resp *r)
{
	free(r->body);
	free(r->content_type);
	free(r->digest);
	free(r->location);
	free(r->range);
	free(r->www_auth);
	memset(r, 0, sizeof(*r));
}

static void set_tls(CURL *h, const struct reg_client *c)
{
	if (c->insecure) {
		reg_curl.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		reg_curl.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
		return;
	}
	if (c->cafile) {
		/* Added to the system's CAs, which CAPATH keeps. */
		reg_curl.easy_setopt(h, CURLOPT_CAINFO, c->cafile);
		reg_curl.easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	if (c->certfile) {
		reg_curl.easy_setopt(h, CURLOPT_SSLCERT, c->certfile);
		reg_curl.easy_setopt(h, CURLOPT_SSLKEY, c->keyfile);
	}
}

static CURL *handle_new(void)
{
	CURL *h = reg_curl.easy_init();
	if (!h)
		abort();
	return h;
}

static void slist_cleanup(struct curl_slist **l)
{
	if (*l)
		reg_curl.slist_free_all(*l);
}
#define _cleanup_slist_ __attribute__((cleanup(slist_cleanup)))

enum auth_mode {
	AUTH_NONE,   /* the ping */
	AUTH_CLIENT, /* the token, or Basic when the registry asks for it */
	AUTH_BASIC,  /* the token service: the user's credentials */
};

/* Sets the credentials this request carries. */
static void set_auth(CURL *h, struct reg_client *c, enum auth_mode mode)
{
	if (mode == AUTH_NONE)
		return;
	pthread_mutex_lock(&c->lock);
	if (mode == AUTH_BASIC) {
		if (c->user) {
			reg_curl.easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
			reg_curl.easy_setopt(h, CURLOPT_USERNAME, c->user);
			reg_curl.easy_setopt(h, CURLOPT_PASSWORD, c->pass);
		}
	} else if (c->token) {
		reg_curl.easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
		reg_curl.easy_setopt(h, CURLOPT_XOAUTH2_BEARER, c->token);
	} else if (c->user && c->chal.scheme &&
		   streq(c->chal.scheme, "basic")) {
		reg_curl.easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		reg_curl.easy_setopt(h, CURLOPT_USERNAME, c->user);
		reg_curl.easy_setopt(h, CURLOPT_PASSWORD, c->pass);
	}
	pthread_mutex_unlock(&c->lock);
}

static char *abs_url(const struct reg_client *c, const char *url)
{
	if (startswith(url, "http://") || startswith(url, "https://"))
		return xstrdup(url);
	if (url[0] == '/')
		return xasprintf("%s%s", c->base, url);
	return xasprintf("%s/v2/%s/%s", c->base, c->path, url);
}

/* One exchange; returns the curl code. */
static CURLcode perform(CURL *h, struct reg_client *c, const struct reg_req *rq,
			struct xfer *x, enum auth_mode auth)
{
	reg_curl.easy_reset(h);
	curl_defaults(h);
	set_tls(h, c);
	_cleanup_free_ char *url = abs_url(c, rq->url);
	reg_curl.easy_setopt(h, CURLOPT_URL, url);
	_cleanup_slist_ struct curl_slist *hdrs = NULL;
	_cleanup_free_ char *accept =
	    rq->accept ? xasprintf("Accept: %s", rq->accept) : NULL;
	_cleanup_free_ char *ctype =
	    rq->content_type ? xasprintf("Content-Type: %s", rq->content_type)
			     : NULL;
	if (accept)
		hdrs = reg_curl.slist_append(hdrs, accept);
	if (ctype)
		hdrs = reg_curl.slist_append(hdrs, ctype);
	const char *method = rq->method ? rq->method : "GET";
	if (streq(method, "HEAD")) {
		reg_curl.easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!streq(method, "GET")) {
		reg_curl.easy_setopt(h, CURLOPT_UPLOAD, 1L);
		reg_curl.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		reg_curl.easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)rq->body_len);
		reg_curl.easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		reg_curl.easy_setopt(h, CURLOPT_READDATA, x);
		/* No "Expect: 100-continue" round trip. */
		hdrs = reg_curl.slist_append(hdrs, "Expect:");
	}
	_cleanup_free_ char *range = NULL;
	if (rq->to_sink && x->sent > 0) {
		range = xasprintf("%lld-", (long long)x->sent);
		reg_curl.easy_setopt(h, CURLOPT_RANGE, range);
	}
	reg_curl.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	reg_curl.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	reg_curl.easy_setopt(h, CURLOPT_HEADERDATA, x);
	reg_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	reg_curl.easy_setopt(h, CURLOPT_WRITEDATA, x);
	reg_curl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	reg_curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	reg_curl.easy_setopt(h, CURLOPT_XFERINFODATA, x);
	set_auth(h, c, auth);
	x->upload_off = 0;
	return reg_curl.easy_perform(h);
}

/* Each thread keeps one handle, so that its connections are reused. */
static pthread_key_t handle_key;
static void handle_free(void *h)
{
	reg_curl.easy_cleanup(h);
}
static void handle_key_init(void)
{
	pthread_key_create(&handle_key, handle_free);
}
/* The thread's handle; NULL (said) when libcurl cannot be loaded. */
static CURL *thread_handle(struct orch_err *e)
{
	if (curl_load(e) < 0)
		return NULL;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, handle_key_init);
	CURL *h = pthread_getspecific(handle_key);
	if (!h) {
		h = handle_new();
		pthread_setspecific(handle_key, h);
	}
	return h;
}

static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long st)
{
	return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

static void backoff(int attempt)
{
	struct timespec ts = {0, 250L * 1000000L << attempt};
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int curl_fail(struct reg_client *c, CURLcode rc, const char *what,
		     struct orch_err *e)
{
	return err_set(e,
		       rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
		       : rc == CURLE_COULDNT_CONNECT  ? ECONNREFUSED
						      : EIO,
		       "%s: talking to %s: %s", what, c->domain,
		       reg_curl.easy_strerror(rc));
}

/* One request with retries; no auth dance. */
static int do_retrying(struct reg_client *c, const struct reg_req *rq,
		       struct reg_resp *resp, enum auth_mode auth,
		       struct orch_err *e)
{
	CURL *h = thread_handle(e);
	if (!h)
		return -e->code;
	struct xfer x = {.req = rq, .resp = resp};
	sb_init(&x.body);
	const char *what = rq->what ? rq->what : rq->url;
	for (int attempt = 0;; attempt++) {
		reg_resp_clear(resp);
		x.body.len = 0;
		CURLcode rc = perform(h, c, rq, &x, auth);
		if (x.sink_err) {
			sb_free(&x.body);
			return err_set(e, EPIPE, "%s: the reader stopped",
				       what);
		}
		if (rc == CURLE_OK) {
			reg_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE,
					  &resp->status);
			if (!status_retryable(resp->status) ||
			    attempt + 1 >= ATTEMPTS)
				break;
		} else if (rc == CURLE_WRITE_ERROR && x.too_big) {
			sb_free(&x.body);
			return err_set(e, EFBIG,
				       "%s: larger than %zu bytes, refused",
				       what, rq->limit);
		} else if (rc == CURLE_WRITE_ERROR && x.streaming) {
			sb_free(&x.body);
			return err_set(e, EFBIG,
				       "%s: more bytes than its descriptor's "
				       "size %lld",
				       what, (long long)rq->sink_size);
		} else if (!curl_retryable(rc) || attempt + 1 >= ATTEMPTS) {
			sb_free(&x.body);
			return curl_fail(c, rc, what, e);
		}
		backoff(attempt);
	}
	resp->len = x.body.len;
	resp->body = sb_steal(&x.body);
	return 0;
}

/* Asks the challenge's realm for a token for this repository. */
static int fetch_token(struct reg_client *c, const char *scope,
		       struct orch_err *e)
{
	CURL *h = thread_handle(e);
	if (!h)
		return -e->code;
	pthread_mutex_lock(&c->lock);
	_cleanup_free_ char *realm =
	    c->chal.realm ? xstrdup(c->chal.realm) : NULL;
	_cleanup_free_ char *service =
	    c->chal.service ? xstrdup(c->chal.service) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (!realm)
		return err_set(e, EPROTO,
			       "%s asks for a bearer token but names no realm",
			       c->domain);
	struct strbuf url;
	sb_init(&url);
	sb_adds(&url, realm);
	char sep = strchr(realm, '?') ? '&' : '?';
	if (service) {
		char *s = reg_curl.easy_escape(h, service, 0);
		sb_printf(&url, "%cservice=%s", sep, s);
		reg_curl.free(s);
		sep = '&';
	}
	for (size_t i = 0; scope && i <= strv_len(c->extra_scopes); i++) {
		const char *one = i ? c->extra_scopes[i - 1] : scope;
		char *s = reg_curl.easy_escape(h, one, 0);
		sb_printf(&url, "%cscope=%s", sep, s);
		reg_curl.free(s);
		sep = '&';
	}
	if (c->user) {
		char *s = reg_curl.easy_escape(h, c->user, 0);
		sb_printf(&url, "%caccount=%s", sep, s);
		reg_curl.free(s);
	}
	_cleanup_free_ char *u = sb_steal(&url);
	struct reg_req rq = {
	    .url = u, .limit = 1 << 20, .what = "getting a token"};
	struct reg_resp resp = {0};
	/* The token service takes the Basic credentials. */
	int r = do_retrying(c, &rq, &resp, AUTH_BASIC, e);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		long st = resp.status;
		reg_resp_clear(&resp);
		if (st == 401 || st == 403)
			return err_set(e, EACCES,
				       "%s: the token service refused %s "
				       "(HTTP %ld); run `orch login %s`",
				       c->domain,
				       c->user ? "the stored credentials"
					       : "anonymous access",
				       st, c->domain);
		return err_set(e, EPROTO,
			       "%s: the token service answered HTTP %ld",
			       c->domain, st);
	}
	json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok) {
		json_decref(j);
		reg_resp_clear(&resp);
		return err_set(e, EPROTO, "%s: the token service sent no token",
			       c->domain);
	}
	pthread_mutex_lock(&c->lock);
	free(c->token);
	c->token = xstrdup(tok);
	pthread_mutex_unlock(&c->lock);
	json_decref(j);
	reg_resp_clear(&resp);
	return 0;
}

static char *repo_scope(const struct reg_client *c)
{
	return xasprintf("repository:%s:%s", c->path, c->actions);
}

/* Learns the challenge of a 401 answer; true when it is worth retrying
 * with (new) credentials. */
static bool take_challenge(struct reg_client *c, const struct reg_resp *resp,
			   bool had_token)
{
	struct auth_challenge ch;
	if (!resp->www_auth || auth_challenge_parse(resp->www_auth, &ch) < 0)
		return false;
	pthread_mutex_lock(&c->lock);
	bool bearer = streq(ch.scheme, "bearer");
	bool retry =
	    bearer ? !had_token || !c->token
		   : streq(ch.scheme, "basic") && c->user &&
			 !(c->chal.scheme && streq(c->chal.scheme, "basic"));
	auth_challenge_clear(&c->chal);
	c->chal = ch;
	if (bearer && had_token) {
		free(c->token);
		c->token = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return retry || (bearer && had_token);
}

int reg_do(struct reg_client *c, const struct reg_req *rq,
	   struct reg_resp *resp, struct orch_err *e)
{
	memset(resp, 0, sizeof(*resp));
	if (rq->anonymous)
		return do_retrying(c, rq, resp, AUTH_NONE, e);
	for (int round = 0;; round++) {
		pthread_mutex_lock(&c->lock);
		bool need_token = !c->token && c->chal.scheme &&
				  streq(c->chal.scheme, "bearer");
		bool had_token = c->token != NULL;
		pthread_mutex_unlock(&c->lock);
		if (need_token) {
			pthread_mutex_lock(&c->token_fetch);
			pthread_mutex_lock(&c->lock);
			need_token = !c->token;
			pthread_mutex_unlock(&c->lock);
			_cleanup_free_ char *scope = repo_scope(c);
			int r = need_token ? fetch_token(c, scope, e) : 0;
			pthread_mutex_unlock(&c->token_fetch);
			if (r < 0)
				return r;
			had_token = true;
		}
		int r = do_retrying(c, rq, resp, AUTH_CLIENT, e);
		if (r < 0)
			return r;
		if (resp->status != 401 || round > 0 ||
		    !take_challenge(c, resp, had_token))
			return 0;
	}
}

/* The registry's own words, from its error JSON. */
static char *registry_message(const struct reg_resp *resp)
{
	json_t *j =
	    resp->body ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
	json_t *first = json_array_get(json_object_get(j, "errors"), 0);
	const char *m = json_string_value(json_object_get(first, "message"));
	char *out = m ? xstrdup(m) : NULL;
	json_decref(j);
	return out;
}

int reg_fail(struct reg_client *c, const struct reg_resp *resp,
	     const char *what, struct orch_err *e)
{
	_cleanup_free_ char *msg = registry_message(resp);
	if (resp->status == 401 || resp->status == 403)
		return err_set(
		    e, EACCES,
		    "%s: %s refused %s (HTTP %ld%s%s); run `orch login %s`",
		    what, c->domain,
		    c->user ? "the stored credentials" : "anonymous access",
		    resp->status, msg ? ": " : "", msg ? msg : "", c->domain);
	if (resp->status == 404)
		return err_set(e, ENOENT, "%s: not found in %s%s%s", what,
			       c->domain, msg ? ": " : "", msg ? msg : "");
	return err_set(e, EPROTO, "%s: %s answered HTTP %ld%s%s", what,
		       c->domain, resp->status, msg ? ": " : "",
		       msg ? msg : "");
}

/* ---- opening ----------------------------------------------------------- */

/* GET /v2/ at base; 0 with the status, or the curl failure. */
static int ping(struct reg_client *c, const char *base, long *status,
		struct orch_err *e)
{
	free(c->base);
	c->base = xstrdup(base);
	struct reg_req rq = {.url = "/v2/", .what = "contacting the registry"};
	struct reg_resp resp = {0};
	int r = do_retrying(c, &rq, &resp, AUTH_NONE, e);
	if (r < 0)
		return r;
	*status = resp.status;
	if (resp.status == 401 && resp.www_auth) {
		auth_challenge_clear(&c->chal);
		auth_challenge_parse(resp.www_auth, &c->chal);
	}
	reg_resp_clear(&resp);
	return 0;
}

static int reg_ping(struct reg_client *c, struct orch_err *e)
{
	bool http_ok = registry_allows_http(c->domain) || c->insecure;
	_cleanup_free_ char *https = xasprintf("https://%s", c->host);
	long st = 0;
	struct orch_err first = {0};
	int r = ping(c, https, &st, &first);
	if (r < 0 && http_ok) {
		/* Plain http only when something answers it as a registry:
		 * a TLS registry with an unknown CA keeps its TLS error. */
		_cleanup_free_ char *http = xasprintf("http://%s", c->host);
		struct orch_err second = {0};
		if (ping(c, http, &st, &second) == 0 &&
		    (st == 200 || st == 401))
			return 0;
	}
	if (r < 0) {
		*e = first;
		return r;
	}
	if (st != 200 && st != 401)
		return err_set(e, EPROTO,
			       "%s does not look like a registry: /v2/ "
			       "answered HTTP %ld",
			       c->domain, st);
	return 0;
}

int reg_open(const char *domain, const char *path, const char *actions,
	     const char *user, const char *pass, struct reg_client **out,
	     struct orch_err *e)
{
	struct reg_client *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->token_fetch, NULL);
	c->domain = xstrdup(domain);
	c->host = xstrdup(streq(domain, "docker.io") ? "registry-1.docker.io"
						     : domain);
	c->path = xstrdup(path);
	c->actions = xstrdup(actions);
	c->insecure = registry_insecure(domain);
	find_certs(c);
	int r = 0;
	if (user) {
		c->user = xstrdup(user);
		c->pass = xstrdup(pass ? pass : "");
	} else {
		r = creds_lookup(domain, &c->user, &c->pass, e);
	}
	if (r == 0)
		r = reg_ping(c, e);
	if (r < 0) {
		reg_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void reg_close(struct reg_client *c)
{
	if (!c)
		return;
	free(c->domain);
	free(c->host);
	free(c->path);
	free(c->actions);
	free(c->base);
	free(c->user);
	free(c->pass);
	free(c->cafile);
	free(c->certfile);
	free(c->keyfile);
	free(c->token);
	auth_challenge_clear(&c->chal);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->token_fetch);
	strv_free(c->extra_scopes);
	free(c);
}

void reg_add_scope(struct reg_client *c, const char *scope)
{
	pthread_mutex_lock(&c->lock);
	if (!c->extra_scopes)
		c->extra_scopes = xcalloc(1, sizeof(char *));
	if (!strv_contains(c->extra_scopes, scope)) {
		strv_push(&c->extra_scopes, scope);
		/* The next request asks for a token that covers it. */
		free(c->token);
		c->token = NULL;
	}
	pthread_mutex_unlock(&c->lock);
}

const char *reg_domain(const struct reg_client *c)
{
	return c->domain;
}

int reg_check_login(struct reg_client *c, struct orch_err *e)
{
	if (!c->chal.scheme)
		return 0; /* the registry asks for nothing */
	if (streq(c->chal.scheme, "bearer"))
		return fetch_token(c, NULL, e);
	struct reg_req rq = {.url = "/v2/", .what = "logging in"};
	struct reg_resp resp = {0};
	int r = do_retrying(c, &rq, &resp, AUTH_CLIENT, e);
	if (r < 0)
		return r;
	if (resp.status != 200)
		r = reg_fail(c, &resp, "logging in", e);
	reg_resp_clear(&resp);
	return r;
}

/* ---- platforms --------------------------------------------------------- */

const char *host_platform(void)
{
#if defined(__x86_64__)
	return "linux/amd64";
#elif defined(__aarch64__)
	return "linux/arm64/v8";
#elif defined(__i386__)
	return "linux/386";
#elif defined(__arm__)
	return "linux/arm/v7";
#elif defined(__powerpc64__)
	return "linux/ppc64le";
#elif defined(__s390x__)
	return "linux/s390x";
#elif defined(__riscv)
	return "linux/riscv64";
#else
	return "linux/unknown";
#endif
}

json_t *index_pick_platform(json_t *manifests, const char *platform,
			    char **have)
{
	_cleanup_free_ char *want = xstrdup(platform);
	char *arch = strchr(want, '/');
	char *variant = NULL;
	if (arch) {
		*arch++ = '\0';
		variant = strchr(arch, '/');
		if (variant)
			*variant++ = '\0';
	}
	struct strbuf sb;
	sb_init(&sb);
	json_t *best = NULL;
	size_t i;
	json_t *m;
	json_array_foreach(manifests, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *ar =
		    json_string_value(json_object_get(p, "architecture"));
		const char *va =
		    json_string_value(json_object_get(p, "variant"));
		if (!os || !ar || streq(os, "unknown"))
			continue;
		sb_printf(&sb, "%s%s/%s%s%s", sb.len ? ", " : "", os, ar,
			  va ? "/" : "", va ? va : "");
		if (best || !streq(os, want) || !arch || !streq(ar, arch))
			continue;
		/* No variant asked, or arm64's default v8: any that fits. */
		bool v_ok = !variant || (va && streq(va, variant)) ||
			    (!va && streq(ar, "arm64") && streq(variant, "v8"));
		if (v_ok)
			best = m;
	}
	if (have)
		*have = sb_steal(&sb);
	else
		sb_free(&sb);
	return best;
}
