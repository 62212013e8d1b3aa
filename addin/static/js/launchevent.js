/* Inbox CRM: log a message as it is sent (Outlook's OnMessageSend launch event, Mailbox 1.12).
 *
 * Outlook runs this file on its own when the rep sends a message: in a JavaScript-only runtime
 * on classic Outlook for Windows (no page, no DOM), in a hidden page elsewhere (/launch-event).
 * Only a message the rep marked in the pane ("Log when sent") is logged. The send is never held
 * up or stopped by us: whatever happens here, the message goes (SoftBlock, and every path ends
 * in event.completed({ allowEvent: true })). A message that could not be logged here is logged
 * the old way, when the rep next opens it from Sent Items (pane.js).
 *
 * The base URL of the service is where this file was loaded from; the rep signs in with Office's
 * single sign-on, the same exchange the pane uses.
 */
(function () {
  "use strict";

  var LOG_ON_SEND = "inboxcrm_log"; // the mark the pane sets (pane.js: LOG_ON_SEND)
  var SEND_KEY = "inboxcrm_send_key"; // the key this handler logs the message under until it has an id
  var BASE = (function () {
    var script = typeof document !== "undefined" && document.currentScript;
    var source = script ? script.src : (typeof location !== "undefined" ? location.href : "");
    try { return new URL(source).origin; } catch (e) { return ""; }
  })();

  function call(target, method) {
    var args = Array.prototype.slice.call(arguments, 2);
    return new Promise(function (resolve, reject) {
      target[method].apply(target, args.concat(function (result) {
        if (result.status === "succeeded") { resolve(result.value); } else { reject(result.error || new Error(method)); }
      }));
    });
  }

  function post(path, body, token, form) {
    var headers = { "Content-Type": form ? "application/x-www-form-urlencoded" : "application/json" };
    if (token) { headers.Authorization = "Bearer " + token; }
    return fetch(BASE + path, { method: "POST", headers: headers, body: form ? body.toString() : JSON.stringify(body), credentials: "omit" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      });
  }

  function addresses(list) {
    return (list || []).map(function (person) { return person.emailAddress; }).filter(Boolean);
  }

  function randomKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function logWhileSending(item) {
    var mailbox = Office.context.mailbox;
    return call(item, "loadCustomPropertiesAsync").then(function (properties) {
      if (properties.get(LOG_ON_SEND) !== "1") { return null; } // not marked: nothing to do
      // The key goes with the message first: in Sent Items, the pane's log of it finds the
      // activity logged here under this key (and gives it the message's id), never a second one.
      var key = properties.get(SEND_KEY) || randomKey();
      properties.set(SEND_KEY, key);
      return call(properties, "saveAsync").then(function () {
        return Promise.all([
          call(item.to, "getAsync"), call(item.cc, "getAsync"), call(item.subject, "getAsync"),
          call(item.body, "getAsync", Office.CoercionType.Text),
          // Office's single sign-on, exchanged for our token (addin/routes/auth.py: office_token).
          Promise.resolve(Office.auth.getAccessToken({ allowSignInPrompt: false, allowConsentPrompt: false }))
            .then(function (accessToken) { return post("/auth/office", { token: accessToken }); })
        ]);
      }).then(function (v) {
        var form = new URLSearchParams();
        form.append("item_type", "message");
        form.append("from_address", mailbox.userProfile.emailAddress);
        form.append("from_name", mailbox.userProfile.displayName || "");
        addresses(v[0]).forEach(function (a) { form.append("to", a); });
        addresses(v[1]).forEach(function (a) { form.append("cc", a); });
        form.append("subject", v[2] || "");
        form.append("body_text", v[3] || "");
        form.append("send_key", key);
        form.append("sent_at", new Date().toISOString());
        if (item.conversationId) { form.append("conversation_id", item.conversationId); }
        return post("/activities/sending", form, v[4].token, true);
      });
    });
  }

  function onMessageSendHandler(event) {
    var item = Office.context.mailbox.item;
    logWhileSending(item)
      .catch(function (error) { // not logged now: Sent Items logs it later
        if (typeof console !== "undefined") { console.warn("Inbox CRM: not logged as it was sent:", error && error.message); }
        return null;
      })
      .then(function () { event.completed({ allowEvent: true }); });
  }

  if (typeof Office !== "undefined" && Office.actions) {
    Office.actions.associate("onMessageSendHandler", onMessageSendHandler);
  }
  // For the hidden page's tests and any caller that wants the handler by name.
  if (typeof window !== "undefined") { window.onMessageSendHandler = onMessageSendHandler; }
})();
