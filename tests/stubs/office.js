/* A stand-in for Microsoft's Office.js, served at its address to the browser tests.
 *
 * It implements the parts of Office.context.mailbox the pane uses, in the shapes Microsoft
 * documents: read-mode values (item.from, item.to as EmailAddressDetails arrays), compose-mode
 * objects read with getAsync, body.getAsync with an AsyncResult, custom properties, and
 * addHandlerAsync(ItemChanged), and Office.auth.getAccessToken. The test drives it through
 * window.__officeInitial (user, item, accessToken, timeZone, properties: saved custom properties
 * per item key) and window.__office:
 *   __office.show(spec)   make spec the current item and fire ItemChanged
 *   __office.properties   the custom properties saved per item key
 *   __office.actions      the launch-event handlers associated (Office.actions.associate)
 */
(function () {
  "use strict";
  var handlers = [];
  var saved = {};
  var mailbox = {
    item: null,
    userProfile: { displayName: "", emailAddress: "", timeZone: "W. Europe Standard Time" },
    addHandlerAsync: function (type, handler, options, callback) {
      if (type === Office.EventType.ItemChanged) { handlers.push(handler); }
      var done = typeof options === "function" ? options : callback;
      if (done) { done({ status: "succeeded", value: undefined }); }
    }
  };

  function ok(value) { return { status: "succeeded", value: value }; }
  function detail(address) { return { displayName: address.split("@")[0], emailAddress: address, recipientType: "externalUser" }; }
  function readable(value) { return value; }
  function writable(value) { return { getAsync: function (options, callback) { (callback || options)(ok(value)); } }; }

  function build(spec) {
    if (!spec) { return null; }
    var compose = spec.mode === "compose";
    var wrap = compose ? writable : readable;
    var key = spec.key || spec.internetMessageId || spec.itemId;
    var item = {
      itemType: spec.itemType || "message",
      subject: wrap(spec.subject || ""),
      body: {
        getAsync: function (coercionType, options, callback) {
          (callback || options)(ok(coercionType === "text" ? spec.body || "" : "<p>" + (spec.body || "") + "</p>"));
        }
      },
      loadCustomPropertiesAsync: function (callback) {
        var values = saved[key] = saved[key] || {};
        var pending = Object.assign({}, values);
        callback(ok({
          get: function (name) { return pending[name]; },
          set: function (name, value) { pending[name] = value; },
          saveAsync: function (done) { saved[key] = Object.assign({}, pending); done(ok()); }
        }));
      }
    };
    if (item.itemType === "appointment") {
      item.organizer = wrap(detail(spec.organizer));
      item.requiredAttendees = wrap((spec.attendees || []).map(detail));
      item.optionalAttendees = wrap([]);
      item.start = wrap(new Date(spec.start));
      item.end = wrap(new Date(spec.end));
      item.itemId = spec.itemId;
    } else {
      item.from = compose ? writable(detail(mailbox.userProfile.emailAddress)) : detail(spec.from);
      item.to = wrap((spec.to || []).map(detail));
      item.cc = wrap((spec.cc || []).map(detail));
      if (!compose) {
        item.internetMessageId = spec.internetMessageId;
        item.conversationId = spec.conversationId;
        item.dateTimeCreated = new Date(spec.sent || Date.now());
      }
    }
    return item;
  }

  window.Office = {
    HostType: { Outlook: "Outlook" },
    CoercionType: { Text: "text", Html: "html" },
    EventType: { ItemChanged: "olkItemSelectedChanged" },
    MailboxEnums: { ItemType: { Message: "message", Appointment: "appointment" } },
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    context: { mailbox: mailbox },
    auth: {
      // Office SSO: the access token the test signed, or the error Office gives when SSO is
      // not available (13003: user type not supported).
      getAccessToken: function () {
        var token = (window.__officeInitial || {}).accessToken;
        return token ? Promise.resolve(token) : Promise.reject({ code: 13003, message: "SSO is not supported here" });
      }
    },
    onReady: function (callback) {
      var info = { host: "Outlook", platform: "OfficeOnline" };
      return new Promise(function (resolve) {
        setTimeout(function () { if (callback) { callback(info); } resolve(info); }, 0);
      });
    }
  };

  var initial = window.__officeInitial || {};
  // Launch events: the handlers a script associates, by name (__office.actions).
  var actions = {};
  window.Office.actions = { associate: function (name, handler) { actions[name] = handler; } };
  Object.keys(initial.properties || {}).forEach(function (key) { saved[key] = Object.assign({}, initial.properties[key]); });
  mailbox.userProfile.emailAddress = initial.user || "";
  if (initial.timeZone) { mailbox.userProfile.timeZone = initial.timeZone; }
  mailbox.item = build(initial.item);
  window.__office = {
    properties: saved,
    actions: actions,
    show: function (spec) {
      mailbox.item = build(spec);
      handlers.forEach(function (handler) { handler({ type: Office.EventType.ItemChanged }); });
    }
  };
})();
