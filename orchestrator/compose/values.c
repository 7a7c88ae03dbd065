/* Pure parsers and printers for compose's value syntaxes: durations, port
 * specs, volume specs, addresses and subnets, project names, paths. */
#include "orchestrator/compose/compose_impl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>

/* ---- durations (Go's time.ParseDuration / Duration.String) ------------- */

int duration_parse(const char *s, int64_t *ns)
{
	static const struct {
		const char *unit;
		int64_t mult;
	} units[] = {
	    {"ns", 1},
	    {"us", 1000},
	    {"\xc2\xb5s", 1000},
	    {"\xce\xbcs", 1000},
	    {"ms", 1000000},
	    {"s", 1000000000},
	    {"m", 60000000000LL},
	    {"h", 3600000000000LL},
	};
	if (!s || !*s)
		return -EINVAL;
	if (streq(s, "0")) {
		*ns = 0;
		return 0;
	}
	long double total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
		const char *num = p;
		bool digits = false;
		while (isdigit((unsigned char)*p)) {
			p++;
			digits = true;
		}
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				p++;
				digits = true;
			}
		}
		if (!digits)
			return -EINVAL;
		_cleanup_free_ char *n = xstrndup(num, (size_t)(p - num));
		long double v = strtold(n, NULL);
		size_t best = 0, best_len = 0;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			size_t l = strlen(units[i].unit);
			if (!strncmp(p, units[i].unit, l) && l > best_len) {
				best = i;
				best_len = l;
			}
		}
		if (!best_len)
			return -EINVAL;
		p += best_len;
		total += v * units[best].mult;
		if (total > (long double)INT64_MAX)
			return -ERANGE;
	}
	*ns = (int64_t)total;
	return 0;
}

/* Fractional part of v/unit with trailing zeros dropped: "1.5". */
static void fmt_frac(struct strbuf *sb, uint64_t v, uint64_t unit)
{
	sb_printf(sb, "%llu", (unsigned long long)(v / unit));
	uint64_t frac = v % unit;
	if (!frac)
		return;
	char digits[24];
	size_t l = 0;
	for (uint64_t u = unit; u > 1; u /= 10)
		l++;
	for (size_t i = l; i-- > 0; frac /= 10)
		digits[i] = (char)('0' + frac % 10);
	digits[l] = '\0';
	while (l && digits[l - 1] == '0')
		digits[--l] = '\0';
	sb_printf(sb, ".%s", digits);
}

char *duration_format(int64_t ns)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	if (ns < 0)
		sb_adds(&sb, "-");
	if (u == 0) {
		sb_adds(&sb, "0s");
	} else if (u < 1000) {
		sb_printf(&sb, "%lluns", (unsigned long long)u);
	} else if (u < 1000000) {
		fmt_frac(&sb, u, 1000);
		sb_adds(&sb, "\xc2\xb5s");
	} else if (u < 1000000000) {
		fmt_frac(&sb, u, 1000000);
		sb_adds(&sb, "ms");
	} else {
		uint64_t secs = u / 1000000000, h = secs / 3600,
			 m = secs / 60 % 60;
		if (h)
			sb_printf(&sb, "%lluh", (unsigned long long)h);
		if (h || m)
			sb_printf(&sb, "%llum", (unsigned long long)m);
		fmt_frac(&sb, u % 60000000000ULL, 1000000000);
		sb_adds(&sb, "s");
	}
	return sb_steal(&sb);
}

/* ---- ports --------------------------------------------------------------- */

static int port_range(const char *s, size_t len, bool allow_zero, uint16_t *lo,
		      uint16_t *hi)
{
	char buf[32];
	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	unsigned long v[2];
	const char *parts[2] = {buf, dash ? dash + 1 : buf};
	for (int i = 0; i < 2; i++) {
		const char *p = parts[i];
		if (!*p)
			return -EINVAL;
		for (const char *c = p; *c; c++)
			if (!isdigit((unsigned char)*c))
				return -EINVAL;
		if (strlen(p) > 5)
			return -ERANGE;
		v[i] = strtoul(p, NULL, 10);
		if (v[i] > 65535 || (!v[i] && !allow_zero))
			return -ERANGE;
	}
	if (v[1] < v[0])
		return -ERANGE;
	*lo = (uint16_t)v[0];
	*hi = (uint16_t)v[1];
	return 0;
}

int proto_parse(const char *s, enum m_proto *p)
{
	if (!strcasecmp(s, "tcp"))
		*p = M_PROTO_TCP;
	else if (!strcasecmp(s, "udp"))
		*p = M_PROTO_UDP;
	else if (!strcasecmp(s, "sctp"))
		*p = M_PROTO_SCTP;
	else
		return -EINVAL;
	return 0;
}

const char *proto_name(enum m_proto p)
{
	return p == M_PROTO_UDP ? "udp" : p == M_PROTO_SCTP ? "sctp" : "tcp";
}

bool ip_valid(const char *s, int *family)
{
	unsigned char buf[16];
	if (inet_pton(AF_INET, s, buf) == 1) {
		if (family)
			*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, buf) == 1) {
		if (family)
			*family = AF_INET6;
		return true;
	}
	return false;
}

int port_parse_spec(struct arena *a, const char *spec, struct m_port **out,
		    size_t *n_out, const char **why)
{
	_cleanup_free_ char *s = xstrdup(spec);
	enum m_proto proto = M_PROTO_TCP;
	char *slash = strrchr(s, '/');
	if (slash) {
		*slash = '\0';
		if (proto_parse(slash + 1, &proto) < 0) {
			*why = "unknown protocol (want tcp, udp or sctp)";
			return -EINVAL;
		}
	}
	char *ip = NULL, *host = NULL, *cont = s;
	char *colon = strrchr(s, ':');
	if (colon) {
		*colon = '\0';
		cont = colon + 1;
		host = s;
		if (s[0] == '[') {
			char *close = strchr(s, ']');
			if (!close || close[1] != ':') {
				*why = "bad host address";
				return -EINVAL;
			}
			*close = '\0';
			ip = s + 1;
			host = close + 2;
		} else if ((colon = strrchr(s, ':'))) {
			*colon = '\0';
			ip = s;
			host = colon + 1;
		}
	}
	if (ip && !ip_valid(ip, NULL)) {
		*why = "bad host address";
		return -EINVAL;
	}
	uint16_t clo, chi, hlo = 0, hhi = 0;
	int r = port_range(cont, strlen(cont), false, &clo, &chi);
	if (r < 0) {
		*why = r == -ERANGE ? "container port out of range (1-65535)"
				    : "bad container port";
		return -EINVAL;
	}
	if (host && *host) {
		r = port_range(host, strlen(host), true, &hlo, &hhi);
		if (r < 0) {
			*why = r == -ERANGE ? "host port out of range (0-65535)"
					    : "bad host port";
			return -EINVAL;
		}
	}
	size_t count = (size_t)(chi - clo) + 1;
	bool host_range = hhi != hlo;
	if (hlo && count > 1 && (size_t)(hhi - hlo) + 1 != count) {
		*why = "host and container port ranges differ in size";
		return -EINVAL;
	}
	struct m_port *ports = arena_new_array(a, struct m_port, count);
	for (size_t i = 0; i < count; i++) {
		struct m_port *p = &ports[i];
		p->host_ip = ip && *ip ? arena_strdup(a, ip) : NULL;
		p->target = (uint16_t)(clo + i);
		p->protocol = proto;
		p->mode = "ingress";
		if (!hlo)
			continue;
		if (count == 1 && host_range) {
			p->published = hlo;
			p->published_end = hhi;
		} else {
			p->published = p->published_end = (uint16_t)(hlo + i);
		}
	}
	*out = ports;
	*n_out = count;
	return 0;
}

/* "8000" or "8000-8010": the published range of a long-syntax port. */
int port_parse_published(const char *s, uint16_t *lo, uint16_t *hi)
{
	return port_range(s, strlen(s), true, lo, hi);
}

/* ---- paths ------------------------------------------------------------------
 */

/* Lexically cleans an absolute path: "//a/./b/../c/" -> "/a/c". */
char *path_clean(struct arena *a, const char *path)
{
	size_t len = strlen(path);
	char *out = arena_alloc(a, len + 2);
	size_t o = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 1 && p[0] == '.') {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = e;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* Resolves p against base (and "~" against home) and cleans it. */
char *path_resolve(struct arena *a, const char *base, const char *home,
		   const char *p)
{
	if (p[0] == '~' && (p[1] == '/' || !p[1]) && home)
		return path_clean(a, arena_printf(a, "%s/%s", home, p + 1));
	if (p[0] == '/')
		return path_clean(a, p);
	return path_clean(a, arena_printf(a, "%s/%s", base, p));
}

/* ---- project names ------------------------------------------------------ */

char *project_name_normalize(const char *raw)
{
	size_t n = strlen(raw), o = 0;
	char *s = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		char c = (char)tolower((unsigned char)raw[i]);
		if (isalnum((unsigned char)c) || c == '-' || c == '_') {
			if (!o && (c == '-' || c == '_'))
				continue;
			if ((unsigned char)raw[i] >= 0x80)
				continue;
			s[o++] = c;
		}
	}
	s[o] = '\0';
	if (!o) {
		free(s);
		return NULL;
	}
	return s;
}

/* ---- subnets ------------------------------------------------------------- */

/* "10.1.0.0/16" -> family, address bytes, prefix length. */
int cidr_parse(const char *s, int *family, unsigned char addr[16], int *prefix)
{
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || strlen(s) > 64)
		return -EINVAL;
	char ip[65];
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, ip, addr) == 1)
		*family = AF_INET;
	else if (inet_pton(AF_INET6, ip, addr) == 1)
		*family = AF_INET6;
	else
		return -EINVAL;
	const char *pl = slash + 1;
	if (!*pl || strlen(pl) > 3)
		return -EINVAL;
	for (const char *c = pl; *c; c++)
		if (!isdigit((unsigned char)*c))
			return -EINVAL;
	int n = atoi(pl);
	if (n > (*family == AF_INET ? 32 : 128))
		return -EINVAL;
	*prefix = n;
	return 0;
}

/* Whether the first bits of a and b agree. */
bool prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rem = bits % 8;
	if (memcmp(a, b, (size_t)bytes))
		return false;
	if (!rem)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rem));
	return (a[bytes] & mask) == (b[bytes] & mask);
}
