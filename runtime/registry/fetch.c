/* A plain download over HTTP(S), for what is not a registry's: a build's
 * ADD of a URL.  The same libcurl, loaded on first use, with the same
 * limits as the registry client (redirects, protocols, timeouts); proxies
 * come from the environment as curl reads them. */
#include "common/lazylib/lazylib.h"
#include "runtime/registry/registry_impl.h"

struct sink {
	int fd;
	EVP_MD_CTX *md;
	int64_t size;
	int err; /* errno of a failed write */
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = sz * n;
	if (write_all(s->fd, p, len) < 0) {
		s->err = errno;
		return 0; /* stops the transfer */
	}
	EVP_DigestUpdate(s->md, p, len);
	s->size += (int64_t)len;
	return len;
}

int rt_http_fetch(const char *url, int fd, struct rt_fetched *out,
		  struct orch_err *e)
{
	memset(out, 0, sizeof(*out));
	if (!startswith(url, "http://") && !startswith(url, "https://"))
		return err_set(e, EINVAL, "%s: not an http or https URL", url);
	int r = curl_load(e);
	if (r < 0)
		return r;
	CURL *h = reg_curl.easy_init();
	if (!h)
		return err_set(e, ENOMEM, "%s: cannot start libcurl", url);
	struct sink s = {.fd = fd, .md = EVP_MD_CTX_new()};
	EVP_DigestInit_ex(s.md, EVP_sha256(), NULL);
	char curl_err[CURL_ERROR_SIZE] = "";
	curl_defaults(h);
	reg_curl.easy_setopt(h, CURLOPT_URL, url);
	reg_curl.easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	reg_curl.easy_setopt(h, CURLOPT_FILETIME, 1L);
	reg_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	reg_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	reg_curl.easy_setopt(h, CURLOPT_WRITEDATA, &s);
	CURLcode rc = reg_curl.easy_perform(h);
	long status = 0;
	reg_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK) {
		curl_off_t t = -1;
		reg_curl.easy_getinfo(h, CURLINFO_FILETIME_T, &t);
		out->mtime = t > 0 ? (int64_t)t : 0;
		out->size = s.size;
		unsigned char md[32];
		EVP_DigestFinal_ex(s.md, md, NULL);
		hex32(md, out->sha256);
		r = 0;
	} else if (s.err) {
		r = err_sys(e, s.err, "%s: writing the download", url);
	} else if (rc == CURLE_HTTP_RETURNED_ERROR) {
		r = err_set(e, EIO, "%s: the server answered HTTP %ld", url,
			    status);
	} else {
		r = err_set(e, EIO, "%s: %s", url,
			    curl_err[0] ? curl_err
					: reg_curl.easy_strerror(rc));
	}
	EVP_MD_CTX_free(s.md);
	reg_curl.easy_cleanup(h);
	return r;
}
