"""The sms_register module's `http` gateway against a provider API served by
the test itself (Python's http.server): the POST carries the number and the
text (PIN included) in the configured form body with basic auth; a provider
that answers 500 is retried, then the client gets 503 and keeps its limit."""

import base64
import http.server
import json
import threading
import urllib.parse

from test_http import call, plain

PHONE = "+4915112345678"


class Provider(http.server.BaseHTTPRequestHandler):
    """Records each POST; answers with the status the test set."""

    posts = []
    status = 201

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", "0"))
        Provider.posts.append({
            "path": self.path,
            "auth": self.headers.get("Authorization", ""),
            "type": self.headers.get("Content-Type", ""),
            "body": self.rfile.read(length).decode(),
        })
        self.send_response(Provider.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"sid": "SM1"}')

    def log_message(self, *args):
        pass


_provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
threading.Thread(target=_provider.serve_forever, daemon=True).start()

SERVER_CONFIG = {
    "http": {},
    "modules": {
        "sms_register": {
            "gateway": "http",
            "gateway_url": "http://127.0.0.1:%d/2010-04-01/Accounts/AC1/Messages.json" % _provider.server_port,
            "gateway_body": "To={phone}&From=xmppd&Body={text}",
            "gateway_auth": "basic",
            "gateway_user": "AC1",
            "gateway_password": "s3cret",
            "gateway_retries": 1,
            "gateway_timeout": 5,
            "message": "Your {host} code is {pin} & nobody else's",
        },
    },
}


def post(server, path, body):
    conn = plain(server)
    try:
        response, data = call(conn, "POST", path, json.dumps(body), {"Content-Type": "application/json"})
        return response, json.loads(data or b"{}")
    finally:
        conn.close()


def test_the_pin_reaches_the_provider_api_and_verifies(server):
    Provider.posts.clear()
    Provider.status = 201
    response, body = post(server, "/v1/register/pin", {"phone": "+49 151 1234 5678"})
    assert response.status == 202, body
    assert len(Provider.posts) == 1
    sent = Provider.posts[0]
    assert sent["path"] == "/2010-04-01/Accounts/AC1/Messages.json"
    assert sent["type"] == "application/x-www-form-urlencoded"
    assert sent["auth"] == "Basic " + base64.b64encode(b"AC1:s3cret").decode()
    form = urllib.parse.parse_qs(sent["body"], strict_parsing=True)
    assert form["To"] == [PHONE] and form["From"] == ["xmppd"]
    text = form["Body"][0]
    assert text.startswith("Your localhost code is ") and text.endswith(" & nobody else's"), text
    pin = text.split()[4]
    assert len(pin) == 5 and pin.isdigit(), text
    response, body = post(server, "/v1/register/verify",
                          {"phone": PHONE, "pin": pin, "device_key": "k" * 32, "device_name": "Pixel 8"})
    assert response.status == 201, body
    assert body["jid"] == "4915112345678@localhost" and body["created"] is True


def test_a_provider_failure_is_retried_then_503_and_does_not_count(server):
    Provider.posts.clear()
    Provider.status = 500
    number = "+33612345678"
    response, body = post(server, "/v1/register/pin", {"phone": number})
    assert response.status == 503, body
    assert body["error"] == "gateway-failed"
    assert len(Provider.posts) == 2  # the first attempt and one retry
    assert "answered 500" in server.log_text()
    # The failed attempt left no PIN outstanding and used none of the limit.
    Provider.status = 200
    for _ in range(3):  # pins_per_number_per_hour defaults to 3
        response, body = post(server, "/v1/register/pin", {"phone": number})
        if response.status == 429 and body["error"] == "pin-outstanding":
            break
        assert response.status == 202, body
    assert response.status == 429 and body["error"] == "pin-outstanding", body
    assert "Retry-After" in dict(response.getheaders())
    stats = server.ctl("sms_gateway_stats").stdout
    assert "gateway: http" in stats and "failed: 1" in stats and "retried: 1" in stats, stats
