// libcurl, loaded when first called (HUBCENSUS_STATIC_DEPS builds link this in place of
// libcurl.so). libcurl.so.4 brings 29 more shared libraries (GnuTLS, Kerberos, LDAP, libssh2,
// ...) that the dynamic linker would map and relocate at every start: about half of what
// `hubcensus --version` costs once gRPC, protobuf and Abseil are linked statically. Most runs of
// hubcensus (`query --data_dir`, `export`, `report`, the aggregator) never speak HTTP.
//
// Each function of curl.h that hubcensus calls is defined here, hidden (libcurl's own calls never
// land here), and forwards to the libcurl.so.4 it dlopen()s on the first call. A function of
// curl.h not defined here fails the link, not the run. Variadic options are read with the type
// curl documents for them, as libcurl reads them.
#define CURL_DISABLE_TYPECHECK  // the function definitions below, not the checking macros
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace {

// The library and every function forwarded to, resolved once.
struct Libcurl {
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

#define HUBCENSUS_CURL_POINTER(name) decltype(&::name) name = nullptr;
  HUBCENSUS_CURL_FUNCTIONS(HUBCENSUS_CURL_POINTER)
#undef HUBCENSUS_CURL_POINTER

  Libcurl() {
    // The soname the -dev package's libcurl.so points at (the one the build would have linked).
    void* handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) Fail("loading libcurl", dlerror());
#define HUBCENSUS_CURL_RESOLVE(name)                                   \
  name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name)); \
  if (name == nullptr) Fail("libcurl.so.4 has no " #name, dlerror());
    HUBCENSUS_CURL_FUNCTIONS(HUBCENSUS_CURL_RESOLVE)
#undef HUBCENSUS_CURL_RESOLVE
  }

  // What the dynamic linker would have said at start had libcurl been linked as usual.
  [[noreturn]] static void Fail(const char* what, const char* error) {
    std::fprintf(stderr, "hubcensus: %s: %s\n", what, error != nullptr ? error : "unknown error");
    std::abort();
  }
};

const Libcurl& Curl() {
  static const Libcurl curl;  // libcurl stays loaded until the process ends
  return curl;
}

}  // namespace

#define HUBCENSUS_HIDDEN __attribute__((visibility("hidden")))

extern "C" {

HUBCENSUS_HIDDEN CURLcode curl_global_init(long flags) { return Curl().curl_global_init(flags); }
HUBCENSUS_HIDDEN char* curl_version(void) { return Curl().curl_version(); }
HUBCENSUS_HIDDEN void curl_free(void* p) { Curl().curl_free(p); }

HUBCENSUS_HIDDEN CURL* curl_easy_init(void) { return Curl().curl_easy_init(); }

HUBCENSUS_HIDDEN CURLcode curl_easy_setopt(CURL* curl, CURLoption option, ...) {
  va_list args;
  va_start(args, option);
  CURLcode result;
  // An option's number says the type of its argument (curl.h's CURLOPTTYPE_*).
  if (option < CURLOPTTYPE_OBJECTPOINT) {
    long value = va_arg(args, long);
    result = Curl().curl_easy_setopt(curl, option, value);
  } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
    void* value = va_arg(args, void*);
    result = Curl().curl_easy_setopt(curl, option, value);
  } else if (option < CURLOPTTYPE_OFF_T) {
    using Function = void (*)(void);
    Function value = va_arg(args, Function);
    result = Curl().curl_easy_setopt(curl, option, value);
  } else if (option < CURLOPTTYPE_BLOB) {
    curl_off_t value = va_arg(args, curl_off_t);
    result = Curl().curl_easy_setopt(curl, option, value);
  } else {
    void* value = va_arg(args, void*);  // struct curl_blob*
    result = Curl().curl_easy_setopt(curl, option, value);
  }
  va_end(args);
  return result;
}

HUBCENSUS_HIDDEN CURLcode curl_easy_getinfo(CURL* curl, CURLINFO info, ...) {
  va_list args;
  va_start(args, info);
  void* out = va_arg(args, void*);  // every CURLINFO_* takes a pointer to its result
  va_end(args);
  return Curl().curl_easy_getinfo(curl, info, out);
}

HUBCENSUS_HIDDEN CURLcode curl_easy_perform(CURL* curl) { return Curl().curl_easy_perform(curl); }
HUBCENSUS_HIDDEN void curl_easy_reset(CURL* curl) { Curl().curl_easy_reset(curl); }
HUBCENSUS_HIDDEN void curl_easy_cleanup(CURL* curl) { Curl().curl_easy_cleanup(curl); }
HUBCENSUS_HIDDEN const char* curl_easy_strerror(CURLcode code) {
  return Curl().curl_easy_strerror(code);
}

HUBCENSUS_HIDDEN struct curl_slist* curl_slist_append(struct curl_slist* list, const char* s) {
  return Curl().curl_slist_append(list, s);
}
HUBCENSUS_HIDDEN void curl_slist_free_all(struct curl_slist* list) {
  Curl().curl_slist_free_all(list);
}

HUBCENSUS_HIDDEN CURLSH* curl_share_init(void) { return Curl().curl_share_init(); }

HUBCENSUS_HIDDEN CURLSHcode curl_share_setopt(CURLSH* share, CURLSHoption option, ...) {
  va_list args;
  va_start(args, option);
  CURLSHcode result;
  switch (option) {
    case CURLSHOPT_SHARE:
    case CURLSHOPT_UNSHARE: {
      int data = va_arg(args, int);  // a curl_lock_data, promoted
      result = Curl().curl_share_setopt(share, option, data);
      break;
    }
    case CURLSHOPT_LOCKFUNC: {
      curl_lock_function lock = va_arg(args, curl_lock_function);
      result = Curl().curl_share_setopt(share, option, lock);
      break;
    }
    case CURLSHOPT_UNLOCKFUNC: {
      curl_unlock_function unlock = va_arg(args, curl_unlock_function);
      result = Curl().curl_share_setopt(share, option, unlock);
      break;
    }
    case CURLSHOPT_USERDATA: {
      void* user = va_arg(args, void*);
      result = Curl().curl_share_setopt(share, option, user);
      break;
    }
    default:
      result = CURLSHE_BAD_OPTION;
      break;
  }
  va_end(args);
  return result;
}

HUBCENSUS_HIDDEN CURLSHcode curl_share_cleanup(CURLSH* share) {
  return Curl().curl_share_cleanup(share);
}

HUBCENSUS_HIDDEN CURLU* curl_url(void) { return Curl().curl_url(); }
HUBCENSUS_HIDDEN CURLUcode curl_url_get(CURLU* url, CURLUPart part, char** out,
                                        unsigned int flags) {
  return Curl().curl_url_get(url, part, out, flags);
}
HUBCENSUS_HIDDEN CURLUcode curl_url_set(CURLU* url, CURLUPart part, const char* content,
                                        unsigned int flags) {
  return Curl().curl_url_set(url, part, content, flags);
}
HUBCENSUS_HIDDEN void curl_url_cleanup(CURLU* url) { Curl().curl_url_cleanup(url); }
HUBCENSUS_HIDDEN const char* curl_url_strerror(CURLUcode code) {
  return Curl().curl_url_strerror(code);
}

}  // extern "C"
