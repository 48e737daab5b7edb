/*
 * The state file's directory.
 *
 * The workers write the state file (a "<file>.tmp" renamed over it), and
 * they run as the `user` of nginx.conf, not as root.  A directory they
 * cannot write in would pass every check and then fail at each interval,
 * losing the month at the next restart.  So, in the master, when the zone
 * is set up (nginx -t, start, reload):
 *
 *   - a missing directory is created, one level, as ngx_create_paths()
 *     creates nginx's temp paths, and given to the workers' user;
 *   - an existing one is never given away (it may be /tmp or
 *     /var/lib/nginx), only checked: a child process takes the workers'
 *     user and group as a worker does and asks the kernel, so that modes,
 *     groups, ACLs and read-only mounts all count as they will for the
 *     workers.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>

#include "ngx_http_usage_gate_paths.h"


/* the exit status of the check: 0, an errno about the directory, FILE
 * plus an errno about a file in it, or SWITCH */
#define NGX_HTTP_USAGE_GATE_PATHS_ERRNO   0x7f
#define NGX_HTTP_USAGE_GATE_PATHS_FILE    0x80
#define NGX_HTTP_USAGE_GATE_PATHS_SWITCH  0xff


typedef struct {
    ngx_uid_t       uid;
    ngx_gid_t       gid;
    const char     *name;
    ngx_uint_t      become;       /* the master is root: switch to it */
    u_char          buf[NGX_INT_T_LEN + sizeof("uid ")];
} ngx_http_usage_gate_paths_user_t;


static void ngx_http_usage_gate_paths_user(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_paths_user_t *u);
static ngx_int_t ngx_http_usage_gate_paths_create(
    ngx_http_usage_gate_zone_t *zone, u_char *dir,
    ngx_http_usage_gate_paths_user_t *u, ngx_log_t *log);
static int ngx_http_usage_gate_paths_try(ngx_http_usage_gate_zone_t *zone,
    u_char *dir, ngx_http_usage_gate_paths_user_t *u, ngx_log_t *log);
static int ngx_http_usage_gate_paths_probe(ngx_http_usage_gate_zone_t *zone,
    u_char *dir, ngx_uid_t uid);
static int ngx_http_usage_gate_paths_errno(void);


ngx_int_t
ngx_http_usage_gate_paths_check(ngx_http_usage_gate_zone_t *zone,
    ngx_log_t *log)
{
    int                                rc;
    u_char                            *dir, *slash, *base;
    ngx_int_t                          ok;
    ngx_err_t                          err;
    ngx_http_usage_gate_paths_user_t   u;

    if (zone->state.len == 0) {
        return NGX_OK;
    }

    ngx_http_usage_gate_paths_user(zone, &u);

    /* the state path is absolute (ngx_conf_full_name) */
    dir = ngx_alloc(zone->state.len + 1, log);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(dir, zone->state.data, zone->state.len + 1);

    slash = (u_char *) strrchr((char *) dir, '/');
    base = zone->state.data + (slash - dir) + 1;

    if (slash == dir) {
        slash++;
    }

    *slash = '\0';

    ok = NGX_ERROR;

    if (ngx_http_usage_gate_paths_create(zone, dir, &u, log) != NGX_OK) {
        goto done;
    }

    rc = ngx_http_usage_gate_paths_try(zone, dir, &u, log);

    if (rc == 0) {
        ok = NGX_OK;
        goto done;
    }

    if (rc < 0) {
        goto done;
    }

    if (rc == NGX_HTTP_USAGE_GATE_PATHS_SWITCH) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\" in %s:%ui: could not take "
                      "the workers' user \"%s\" to check the state file's "
                      "directory \"%s\"; check the \"user\" directive",
                      &zone->name, zone->file, zone->line, u.name, dir);
        goto done;
    }

    if (rc & NGX_HTTP_USAGE_GATE_PATHS_FILE) {
        err = rc & NGX_HTTP_USAGE_GATE_PATHS_ERRNO;
        ngx_log_error(NGX_LOG_EMERG, log, err,
                      "usage_gate_zone \"%V\" in %s:%ui: the workers' user "
                      "\"%s\" cannot replace \"%V\" or its \".tmp\" file, "
                      "so the state file would never be written; give "
                      "them to that user (chown %s %V %V.tmp) or remove "
                      "them", &zone->name, zone->file, zone->line, u.name,
                      &zone->state, u.name, &zone->state, &zone->state);
        goto done;
    }

    /* the first fix offered never hands a shared directory (/tmp,
     * /var/lib/nginx) to the workers */
    ngx_log_error(NGX_LOG_EMERG, log, (ngx_err_t) rc,
                  "usage_gate_zone \"%V\" in %s:%ui: the workers' user "
                  "\"%s\" cannot write in \"%s\", the state file's "
                  "directory, so the counts would be lost at every "
                  "restart; give the state file a directory of its own, "
                  "which nginx creates for that user (state=%s%s"
                  "usage_gate/%s), or, if this directory is the state "
                  "file's alone, give it to that user (install -d -o %s "
                  "%s); every directory above it must let that user pass",
                  &zone->name, zone->file, zone->line, u.name, dir, dir,
                  slash == dir + 1 ? "" : "/", base, u.name, dir);

done:

    ngx_free(dir);

    return ok;
}


/* The user the workers will run as: the `user` directive's, or the
 * master's own when it is not root (nginx then ignores `user`). */
static void
ngx_http_usage_gate_paths_user(ngx_http_usage_gate_zone_t *zone,
    ngx_http_usage_gate_paths_user_t *u)
{
    struct passwd    *pw;
    ngx_core_conf_t  *ccf;

    ccf = zone->core_conf;

    if (ccf && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        u->uid = ccf->user;
        u->gid = ccf->group;
        u->name = ccf->username;
        u->become = (geteuid() == 0 && ccf->user != 0);
        return;
    }

    u->uid = geteuid();
    u->gid = getegid();
    u->become = 0;

    pw = getpwuid(u->uid);

    if (pw) {
        /* kept only until the next getpw* call: copied */
        ngx_cpystrn(u->buf, (u_char *) pw->pw_name, sizeof(u->buf));
        u->name = (char *) u->buf;
        return;
    }

    ngx_sprintf(u->buf, "uid %ui%Z", (ngx_uint_t) u->uid);
    u->name = (char *) u->buf;
}


static ngx_int_t
ngx_http_usage_gate_paths_create(ngx_http_usage_gate_zone_t *zone,
    u_char *dir, ngx_http_usage_gate_paths_user_t *u, ngx_log_t *log)
{
    ngx_err_t        err;
    ngx_file_info_t  fi;

    if (ngx_file_info(dir, &fi) != NGX_FILE_ERROR) {
        if (ngx_is_dir(&fi)) {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\" in %s:%ui: \"%s\", the state "
                      "file's directory, is not a directory",
                      &zone->name, zone->file, zone->line, dir);
        return NGX_ERROR;
    }

    err = ngx_errno;

    if (err != NGX_ENOENT) {
        ngx_log_error(NGX_LOG_EMERG, log, err,
                      "usage_gate_zone \"%V\" in %s:%ui: " ngx_file_info_n
                      " \"%s\" failed", &zone->name, zone->file,
                      zone->line, dir);
        return NGX_ERROR;
    }

    /* private: the file holds every owner's counts and the salt that
     * keys anonymous owners */
    if (ngx_create_dir(dir, 0700) == NGX_FILE_ERROR) {
        err = ngx_errno;

        if (err == NGX_EEXIST) {
            /* another nginx -t made it meanwhile: checked as existing */
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, log, err,
                      "usage_gate_zone \"%V\" in %s:%ui: cannot create "
                      "\"%s\", the state file's directory; nginx creates "
                      "only that last directory: create the ones above it, "
                      "or choose another state= path",
                      &zone->name, zone->file, zone->line, dir);
        return NGX_ERROR;
    }

    if (u->become && chown((const char *) dir, u->uid, u->gid) == -1) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "usage_gate_zone \"%V\" in %s:%ui: chown(\"%s\", "
                      "\"%s\") of the state file's new directory failed",
                      &zone->name, zone->file, zone->line, dir, u->name);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "usage_gate_zone \"%V\": created \"%s\" for the state "
                  "file, owned by \"%s\"", &zone->name, dir, u->name);

    return NGX_OK;
}


/*
 * Asks the kernel whether the workers' user may write the state file
 * there.  As root, in a child that becomes that user exactly as a worker
 * does (setgid, initgroups, setuid); the master itself never changes its
 * credentials.  Returns the check's status (0: yes), or -1 after logging.
 */
static int
ngx_http_usage_gate_paths_try(ngx_http_usage_gate_zone_t *zone, u_char *dir,
    ngx_http_usage_gate_paths_user_t *u, ngx_log_t *log)
{
    int        status;
    ngx_pid_t  pid;

    if (!u->become) {
        return ngx_http_usage_gate_paths_probe(zone, dir, u->uid);
    }

    pid = fork();

    if (pid == -1) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "usage_gate_zone \"%V\": fork() to check the state "
                      "file's directory \"%s\" failed", &zone->name, dir);
        return -1;
    }

    if (pid == 0) {
        if (setgid(u->gid) == -1
            || initgroups(u->name, u->gid) == -1
            || setuid(u->uid) == -1)
        {
            _exit(NGX_HTTP_USAGE_GATE_PATHS_SWITCH);
        }

        _exit(ngx_http_usage_gate_paths_probe(zone, dir, u->uid));
    }

    /* the master blocks SIGCHLD while it reloads, so no handler reaps
     * this child first; a short wait: the child only asks the kernel */
    while (waitpid(pid, &status, 0) == -1) {
        if (ngx_errno != NGX_EINTR) {
            ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                          "usage_gate_zone \"%V\": waitpid() of the state "
                          "directory check failed", &zone->name);
            return -1;
        }
    }

    if (!WIFEXITED(status)) {
        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "usage_gate_zone \"%V\": the check of the state "
                      "file's directory \"%s\" did not finish (status %d)",
                      &zone->name, dir, status);
        return -1;
    }

    return WEXITSTATUS(status);
}


/*
 * As the workers' user: the directory must take new files (write and
 * search), a stale "<file>.tmp" must be writable, and in a sticky
 * directory (/tmp) the state file can only be replaced by its owner or
 * the directory's.
 */
static int
ngx_http_usage_gate_paths_probe(ngx_http_usage_gate_zone_t *zone,
    u_char *dir, ngx_uid_t uid)
{
    u_char           tmp[NGX_MAX_PATH];
    ngx_file_info_t  dfi, fi;

    if (access((const char *) dir, W_OK | X_OK) == -1
        || ngx_file_info(dir, &dfi) == NGX_FILE_ERROR)
    {
        return ngx_http_usage_gate_paths_errno();
    }

    if (zone->state.len + sizeof(".tmp") <= sizeof(tmp)) {
        ngx_sprintf(tmp, "%V.tmp%Z", &zone->state);

        if (ngx_link_info(tmp, &fi) != NGX_FILE_ERROR
            && access((const char *) tmp, W_OK) == -1)
        {
            return NGX_HTTP_USAGE_GATE_PATHS_FILE
                   | ngx_http_usage_gate_paths_errno();
        }
    }

    if ((dfi.st_mode & S_ISVTX)
        && dfi.st_uid != uid
        && ngx_link_info(zone->state.data, &fi) != NGX_FILE_ERROR
        && fi.st_uid != uid)
    {
        return NGX_HTTP_USAGE_GATE_PATHS_FILE | EPERM;
    }

    return 0;
}


/* errno as it fits in the check's exit status */
static int
ngx_http_usage_gate_paths_errno(void)
{
    ngx_err_t  err;

    err = ngx_errno;

    if (err <= 0 || err >= NGX_HTTP_USAGE_GATE_PATHS_ERRNO) {
        return EACCES;
    }

    return err;
}
