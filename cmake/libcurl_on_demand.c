/* libcurl, loaded when first called (HUBCENSUS_STATIC_DEPS builds link this in place of
 * libcurl.so). libcurl.so.4 brings 29 more shared libraries (GnuTLS, Kerberos, LDAP, libssh2,
 * ...) that the dynamic linker would map and relocate at every start: about half of what
 * `hubcensus --version` costs once gRPC, protobuf and Abseil are linked statically. Most runs of
 * hubcensus (`query --data_dir`, `export`, `report`, the aggregator) never speak HTTP.
 *
 * Each function of curl.h that hubcensus calls is defined here, hidden (libcurl's own calls never
 * land here), and forwards to the libcurl.so.4 it dlopen()s on the first call. A function of
 * curl.h not defined here fails the link, not the run. Variadic options are read with the type
 * curl documents for them, as libcurl reads them. C, as curl.h is: its enums are the variadic
 * functions' last named parameters. */
#define CURL_DISABLE_TYPECHECK /* the function definitions below, not the checking macros */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define HUBCENSUS_CURL_FUNCTIONS(X) \
  X(curl_global_init)               \
  X(curl_version)                   \
  X(curl_free)                      \
  X(curl_easy_init)                 \
  X(curl_easy_setopt)               \
  X(curl_easy_getinfo)              \
  X(curl_easy_perform)              \
  X(curl_easy_reset)                \
  X(curl_easy_cleanup)              \
  X(curl_easy_strerror)             \
  X(curl_slist_append)              \
  X(curl_slist_free_all)            \
  X(curl_share_init)                \
  X(curl_share_setopt)              \
  X(curl_share_cleanup)             \
  X(curl_url)                       \
  X(curl_url_get)                   \
  X(curl_url_set)                   \
  X(curl_url_cleanup)               \
  X(curl_url_strerror)

/* The functions forwarded to, resolved once. */
static struct {
#define HUBCENSUS_CURL_POINTER(name) __typeof__(&name) name;
  HUBCENSUS_CURL_FUNCTIONS(HUBCENSUS_CURL_POINTER)
#undef HUBCENSUS_CURL_POINTER
} libcurl;
static pthread_once_t libcurl_once = PTHREAD_ONCE_INIT;

/* What the dynamic linker would have said at start had libcurl been linked as usual. */
static void Fail(const char* what, const char* error) {
  fprintf(stderr, "hubcensus: %s: %s\n", what, error != NULL ? error : "unknown error");
  abort();
}

static void LoadLibcurl(void) {
  /* The soname the -dev package's libcurl.so names (the one the build would have linked). */
  void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) Fail("loading libcurl", dlerror());
#define HUBCENSUS_CURL_RESOLVE(name)                    \
  *(void**)(&libcurl.name) = dlsym(handle, #name);      \
  if (libcurl.name == NULL) Fail("libcurl.so.4 has no " #name, dlerror());
  HUBCENSUS_CURL_FUNCTIONS(HUBCENSUS_CURL_RESOLVE)
#undef HUBCENSUS_CURL_RESOLVE
}

#define CURL_ONCE() (pthread_once(&libcurl_once, LoadLibcurl), &libcurl)
#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN CURLcode curl_global_init(long flags) { return CURL_ONCE()->curl_global_init(flags); }
HIDDEN char* curl_version(void) { return CURL_ONCE()->curl_version(); }
HIDDEN void curl_free(void* p) { CURL_ONCE()->curl_free(p); }

HIDDEN CURL* curl_easy_init(void) { return CURL_ONCE()->curl_easy_init(); }

HIDDEN CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  va_list args;
  CURLcode result;
  va_start(args, option);
  /* An option's number says the type of its argument (curl.h's CURLOPTTYPE_*). */
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    long value = va_arg(args, long);
    result = CURL_ONCE()->curl_easy_setopt(curl, option, value);
  } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
    void* value = va_arg(args, void*);
    result = CURL_ONCE()->curl_easy_setopt(curl, option, value);
  } else if (option < CURLOPTTYPE_OFF_T) {
    void (*value)(void) = va_arg(args, void (*)(void));
    result = CURL_ONCE()->curl_easy_setopt(curl, option, value);
  } else if (option < CURLOPTTYPE_BLOB) {
    curl_off_t value = va_arg(args, curl_off_t);
    result = CURL_ONCE()->curl_easy_setopt(curl, option, value);
  } else {
    void* value = va_arg(args, void*); /* struct curl_blob* */
    result = CURL_ONCE()->curl_easy_setopt(curl, option, value);
  }
  va_end(args);
  return result;
}

HIDDEN CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  va_list args;
  void* out;
  va_start(args, info);
  out = va_arg(args, void*); /* every CURLINFO_* takes a pointer to its result */
  va_end(args);
  return CURL_ONCE()->curl_easy_getinfo(curl, info, out);
}

HIDDEN CURLcode curl_easy_perform(CURL* curl) { return CURL_ONCE()->curl_easy_perform(curl); }
HIDDEN void curl_easy_reset(CURL* curl) { CURL_ONCE()->curl_easy_reset(curl); }
HIDDEN void curl_easy_cleanup(CURL* curl) { CURL_ONCE()->curl_easy_cleanup(curl); }
HIDDEN const char* curl_easy_strerror(CURLcode code) {
  return CURL_ONCE()->curl_easy_strerror(code);
}

HIDDEN struct curl_slist* curl_slist_append(struct curl_slist* list, const char* s) {
  return CURL_ONCE()->curl_slist_append(list, s);
}
HIDDEN void curl_slist_free_all(struct curl_slist* list) { CURL_ONCE()->curl_slist_free_all(list); }

HIDDEN CURLSH* curl_share_init(void) { return CURL_ONCE()->curl_share_init(); }

HIDDEN CURLSHcode curl_share_setopt(CURLSH* share, CURLSHoption option, ...) {
  va_list args;
  CURLSHcode result;
  va_start(args, option);
  switch (option) {
    case CURLSHOPT_SHARE:
    case CURLSHOPT_UNSHARE:
      /* a curl_lock_data, promoted */
      result = CURL_ONCE()->curl_share_setopt(share, option, va_arg(args, int));
      break;
    case CURLSHOPT_LOCKFUNC:
      result = CURL_ONCE()->curl_share_setopt(share, option, va_arg(args, curl_lock_function));
      break;
    case CURLSHOPT_UNLOCKFUNC:
      result = CURL_ONCE()->curl_share_setopt(share, option, va_arg(args, curl_unlock_function));
      break;
    case CURLSHOPT_USERDATA:
      result = CURL_ONCE()->curl_share_setopt(share, option, va_arg(args, void*));
      break;
    default:
      result = CURLSHE_BAD_OPTION;
      break;
  }
  va_end(args);
  return result;
}

HIDDEN CURLSHcode curl_share_cleanup(CURLSH* share) {
  return CURL_ONCE()->curl_share_cleanup(share);
}

HIDDEN CURLU* curl_url(void) { return CURL_ONCE()->curl_url(); }
HIDDEN CURLUcode curl_url_get(CURLU* url, CURLUPart part, char** out, unsigned int flags) {
  return CURL_ONCE()->curl_url_get(url, part, out, flags);
}
HIDDEN CURLUcode curl_url_set(CURLU* url, CURLUPart part, const char* content,
                              unsigned int flags) {
  return CURL_ONCE()->curl_url_set(url, part, content, flags);
}
HIDDEN void curl_url_cleanup(CURLU* url) { CURL_ONCE()->curl_url_cleanup(url); }
HIDDEN const char* curl_url_strerror(CURLUcode code) {
  return CURL_ONCE()->curl_url_strerror(code);
}
