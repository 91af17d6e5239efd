// An external component (XEP-0114) built on xmpp.js's @xmpp/component,
// driven by tests/integration/test_xmppjs_component.py.
//
//   XMPP_SERVICE=xmpp://127.0.0.1:PORT XMPP_DOMAIN=js.localhost \
//   XMPP_SECRET=... node echo_component.mjs
//
// What it does on its own:
//   - a chat or normal message with a body is answered with "echo: <body>",
//     from the address it was sent to, with the same type and thread;
//   - disco#info (XEP-0030) is answered with one identity and its features;
//   - <reverse xmlns='urn:xmppd:test:echo'>text</reverse> (get) is answered
//     with the text reversed;
//   - any other iq request gets xmpp.js's own <service-unavailable/>.
//
// What the test asks it for, one JSON object per line on stdin:
//   {"op": "message", "to": J, "from": J, "body": T, "type": "chat"}
//   {"op": "iq", "to": J, "from": J, "ns": NS, "name": N, "type": "get"}
//   {"op": "stop"}
// Every event is one JSON line on stdout ({"event": ...}), which the test
// reads: "online", "received", "sent", "iq-result", "iq-error", "offline".

import { createInterface } from "node:readline";
import { component, xml } from "@xmpp/component";

const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_ECHO = "urn:xmppd:test:echo";

const domain = process.env.XMPP_DOMAIN;
const xmpp = component({
  service: process.env.XMPP_SERVICE,
  domain,
  password: process.env.XMPP_SECRET,
});
// The test starts it once; a lost stream must fail the test, not be hidden.
xmpp.reconnect.stop();

function report(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

xmpp.on("error", (err) => report("error", { message: String(err && err.message ? err.message : err) }));
xmpp.on("offline", () => report("offline"));
xmpp.on("online", (address) => report("online", { jid: address.toString() }));

xmpp.on("stanza", async (stanza) => {
  report("received", { xml: stanza.toString() });
  if (!stanza.is("message")) {
    return;
  }
  const type = stanza.attrs.type || "normal";
  const body = stanza.getChildText("body");
  if ((type !== "chat" && type !== "normal") || body === null) {
    return;
  }
  const reply = xml("message", { to: stanza.attrs.from, from: stanza.attrs.to, type },
    xml("body", {}, "echo: " + body));
  const thread = stanza.getChildText("thread");
  if (thread !== null) {
    reply.append(xml("thread", {}, thread));
  }
  await xmpp.send(reply);
});

xmpp.iqCallee.get(NS_DISCO_INFO, "query", (ctx) => {
  const node = ctx.element.attrs.node;
  const query = xml("query", node ? { xmlns: NS_DISCO_INFO, node } : { xmlns: NS_DISCO_INFO },
    xml("identity", { category: "component", type: "generic", name: "xmpp.js echo" }),
    xml("feature", { var: NS_DISCO_INFO }),
    xml("feature", { var: NS_ECHO }));
  return query;
});

xmpp.iqCallee.get(NS_ECHO, "reverse", (ctx) => {
  const text = ctx.element.getText();
  return xml("reverse", { xmlns: NS_ECHO }, [...text].reverse().join(""));
});

async function command(line) {
  if (!line.trim()) {
    return;
  }
  const cmd = JSON.parse(line);
  if (cmd.op === "message") {
    const attrs = { to: cmd.to, from: cmd.from || domain, type: cmd.type || "chat" };
    if (cmd.id) {
      attrs.id = cmd.id;
    }
    await xmpp.send(xml("message", attrs, xml("body", {}, cmd.body)));
    report("sent", { id: cmd.id || null });
  } else if (cmd.op === "iq") {
    const request = xml("iq", { to: cmd.to, from: cmd.from || domain, type: cmd.type || "get" },
      xml(cmd.name, { xmlns: cmd.ns }));
    try {
      const result = await xmpp.iqCaller.request(request, 10000);
      report("iq-result", { tag: cmd.tag || null, xml: result.toString() });
    } catch (err) {
      report("iq-error", { tag: cmd.tag || null, condition: err.condition || null,
        message: String(err.message) });
    }
  } else if (cmd.op === "stop") {
    await xmpp.stop();
    process.exit(0);
  } else {
    report("error", { message: "unknown op " + cmd.op });
  }
}

createInterface({ input: process.stdin }).on("line", (line) => {
  command(line).catch((err) => report("error", { message: String(err && err.message ? err.message : err) }));
});

xmpp.start().catch((err) => {
  report("error", { message: "start: " + String(err && err.message ? err.message : err) });
  process.exit(1);
});
