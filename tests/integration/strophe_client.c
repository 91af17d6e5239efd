/* strophe_client: a libstrophe client for the integration tests.
 *
 * usage: strophe_client JID PASSWORD ADDRESS PORT CAFILE TO BODY TIMEOUT_SECONDS [direct-tls]
 *
 * Connects to ADDRESS:PORT as JID with mandatory STARTTLS, or TLS from the
 * first byte with "direct-tls" (XEP-0368; the certificate is
 * checked against CAFILE and the JID's domain), lets libstrophe pick the SASL
 * mechanism, binds, sends initial presence and one chat message BODY to TO,
 * then waits for one message back.
 *
 * stdout, one fact per line:
 *   MECHANISM <name>      the SASL mechanism libstrophe used
 *   CONNECTED <jid>       session established (TLS on), bound JID
 *   SENT <id>             the message went out with this id
 *   RECEIVED <from> <body>
 *   TIMEOUT | DISCONNECTED <error> | STREAM-ERROR <type>
 *
 * exit: 0 a message came back; 1 usage/setup; 2 could not log in;
 *       3 timed out waiting; 4 disconnected while waiting.
 * STROPHE_DEBUG=1 copies libstrophe's debug log to stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strophe.h>

struct state {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    const char *to;
    const char *body;
    int connected;
    int received;
    int timed_out;
    int exit_code;
    int debug;
};

static void note_mechanism(const char *msg)
{
    /* libstrophe logs every stanza it sends; the <auth/> names the mechanism. */
    const char *auth = strstr(msg, "<auth");
    if (!auth)
        return;
    const char *m = strstr(auth, "mechanism=");
    if (!m)
        return;
    m += strlen("mechanism=");
    char quote = *m++;
    if (quote != '"' && quote != '\'')
        return;
    const char *end = strchr(m, quote);
    if (!end)
        return;
    printf("MECHANISM %.*s\n", (int)(end - m), m);
    fflush(stdout);
}

static void log_handler(void *userdata, xmpp_log_level_t level, const char *area,
                        const char *msg)
{
    struct state *st = userdata;
    note_mechanism(msg);
    if (st->debug || level >= XMPP_LEVEL_WARN)
        fprintf(stderr, "strophe %d %s: %s\n", (int)level, area, msg);
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    struct state *st = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    char *body = xmpp_message_get_body(stanza);
    const char *from = xmpp_stanza_get_from(stanza);

    if (type && strcmp(type, "error") == 0) {
        printf("ERROR-MESSAGE %s\n", from ? from : "-");
    } else if (body) {
        printf("RECEIVED %s %s\n", from ? from : "-", body);
        st->received = 1;
        st->exit_code = 0;
        xmpp_disconnect(conn);
    }
    fflush(stdout);
    if (body)
        xmpp_free(st->ctx, body);
    return 1;
}

/* A global timer: it fires whatever state the connection is in. */
static int timeout_handler(xmpp_ctx_t *ctx, void *userdata)
{
    struct state *st = userdata;
    if (!st->received) {
        printf("TIMEOUT\n");
        fflush(stdout);
        st->timed_out = 1;
        st->exit_code = st->connected ? 3 : 2;
        if (st->connected)
            xmpp_disconnect(st->conn);
        else
            xmpp_stop(ctx);
    }
    return 0;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    struct state *st = userdata;

    if (event == XMPP_CONN_CONNECT) {
        st->connected = 1;
        if (!xmpp_conn_is_secured(conn)) {
            printf("NOT-SECURED\n");
            st->exit_code = 2;
            xmpp_disconnect(conn);
            return;
        }
        printf("CONNECTED %s\n", xmpp_conn_get_bound_jid(conn));

        xmpp_handler_add(conn, message_handler, NULL, "message", NULL, st);

        xmpp_stanza_t *pres = xmpp_presence_new(st->ctx);
        xmpp_send(conn, pres);
        xmpp_stanza_release(pres);

        xmpp_stanza_t *msg = xmpp_message_new(st->ctx, "chat", st->to, "strophe-msg-1");
        xmpp_message_set_body(msg, st->body);
        xmpp_send(conn, msg);
        xmpp_stanza_release(msg);
        printf("SENT strophe-msg-1\n");
        fflush(stdout);
        return;
    }

    if (stream_error)
        printf("STREAM-ERROR %d\n", (int)stream_error->type);
    printf("DISCONNECTED %d\n", error);
    fflush(stdout);
    if (!st->received && !st->timed_out)
        st->exit_code = st->connected ? 4 : 2;
    xmpp_stop(st->ctx);
}

static int reject_bad_certificate(const xmpp_tlscert_t *cert, const char *const errormsg)
{
    (void)cert;
    printf("CERTIFICATE-REJECTED %s\n", errormsg ? errormsg : "-");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 9 && !(argc == 10 && strcmp(argv[9], "direct-tls") == 0)) {
        fprintf(stderr,
                "usage: %s JID PASSWORD ADDRESS PORT CAFILE TO BODY TIMEOUT_SECONDS [direct-tls]\n",
                argv[0]);
        return 1;
    }
    long flags = argc == 10 ? XMPP_CONN_FLAG_LEGACY_SSL : XMPP_CONN_FLAG_MANDATORY_TLS;
    const char *jid = argv[1], *password = argv[2], *address = argv[3];
    long port = strtol(argv[4], NULL, 10);
    const char *cafile = argv[5];
    long timeout_s = strtol(argv[8], NULL, 10);
    if (port <= 0 || port > 65535 || timeout_s <= 0) {
        fprintf(stderr, "bad PORT or TIMEOUT_SECONDS\n");
        return 1;
    }

    struct state st = {0};
    st.to = argv[6];
    st.body = argv[7];
    st.exit_code = 2;
    const char *dbg = getenv("STROPHE_DEBUG");
    st.debug = dbg && *dbg && strcmp(dbg, "0") != 0;

    /* libstrophe writes with plain send(): a write after the server closed
     * (an XEP-0198 <a/> answered after our </stream:stream>) must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    xmpp_log_t log = {log_handler, &st};
    xmpp_initialize();
    st.ctx = xmpp_ctx_new(NULL, &log);
    xmpp_conn_t *conn = xmpp_conn_new(st.ctx);
    st.conn = conn;
    xmpp_conn_set_flags(conn, flags);
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, password);
    xmpp_conn_set_cafile(conn, cafile);
    xmpp_conn_set_certfail_handler(conn, reject_bad_certificate);
    xmpp_global_timed_handler_add(st.ctx, timeout_handler, (unsigned long)timeout_s * 1000, &st);

    if (xmpp_connect_client(conn, address, (unsigned short)port, conn_handler, &st) != XMPP_EOK) {
        printf("CONNECT-FAILED\n");
        st.exit_code = 2;
    } else {
        xmpp_run(st.ctx);
    }

    xmpp_conn_release(conn);
    xmpp_ctx_free(st.ctx);
    xmpp_shutdown();
    return st.exit_code;
}
