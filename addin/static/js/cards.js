/* The preview's Gmail side panel: draws the card JSON the Gmail add-on answers, as Gmail
 * would, for the widgets this add-on uses (header, sections, text, decorated text, buttons,
 * text and selection inputs, date-time pickers, a fixed footer), and posts every button's
 * action back as an event object, to /preview/gmail/... (the same handlers Google calls, for
 * the signed-in demo user). Card text is a small HTML subset: only <b>, <i> and <br> are
 * drawn, everything else is text.
 */
(function () {
  "use strict";

  var panel, requests = 0, stack = [], messageId = "", draftTo = [], zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function csrf() {
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    return headers["X-CSRFToken"] || "";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  /* Card text: <b>, <i>, <br> drawn, every other tag dropped to its text. */
  function rich(node, html) {
    var doc = new DOMParser().parseFromString("<body>" + (html || ""), "text/html");
    (function copy(from, to) {
      from.childNodes.forEach(function (child) {
        if (child.nodeType === Node.TEXT_NODE) { to.appendChild(document.createTextNode(child.textContent)); return; }
        if (child.nodeType !== Node.ELEMENT_NODE) { return; }
        var tag = child.tagName.toLowerCase();
        if (tag === "br") { to.appendChild(el("br")); return; }
        var target = (tag === "b" || tag === "i") ? to.appendChild(el(tag)) : to;
        copy(child, target);
      });
    })(doc.body, node);
    return node;
  }

  function actionName(action) {
    var path = String(action.function || "").split("?")[0].split("/");
    return path[path.length - 1];
  }

  function clickable(node, onClick) {
    if (!onClick) { return node; }
    node.addEventListener("click", function (event) {
      event.preventDefault();
      event.stopPropagation(); // a decorated text's own button is its action alone, not the row's too
      if (onClick.openLink) { window.open(onClick.openLink.url, "_blank", "noopener"); return; }
      if (onClick.action) { run("action", actionName(onClick.action), onClick.action.parameters || []); }
    });
    return node;
  }

  function drawButton(button) {
    var node = el("button", button.type === "FILLED" ? "card-button filled" : "card-button", button.text);
    node.type = "button";
    return clickable(node, button.onClick);
  }

  /* A form control the actions read back (inputs()): its card name and how to send it. */
  function field(tag, name, kind) {
    var control = el(tag);
    control.setAttribute("data-name", name);
    control.setAttribute("data-kind", kind);
    return control;
  }

  function labelled(label, control) {
    var node = el("label", "card-input", label);
    node.appendChild(control);
    return node;
  }

  function drawWidget(widget) {
    var node;
    if (widget.textParagraph) { return rich(el("p", "card-text"), widget.textParagraph.text); }
    if (widget.decoratedText) {
      var d = widget.decoratedText;
      node = el("div", "card-decorated");
      if (d.topLabel) { rich(node.appendChild(el("div", "card-top")), d.topLabel); }
      rich(node.appendChild(el("div", "card-main")), d.text);
      if (d.bottomLabel) { rich(node.appendChild(el("div", "card-bottom")), d.bottomLabel); }
      if (d.button) { node.appendChild(drawButton(d.button)); }
      if (d.onClick) {
        node.classList.add("card-link");
        node.tabIndex = 0;
        node.setAttribute("role", "button");
        clickable(node, d.onClick);
        node.addEventListener("keydown", function (event) { if (event.key === "Enter") { node.click(); } });
      }
      return node;
    }
    if (widget.buttonList) {
      node = el("div", "card-buttons");
      widget.buttonList.buttons.forEach(function (b) { node.appendChild(drawButton(b)); });
      return node;
    }
    if (widget.textInput) {
      var t = widget.textInput;
      var input = field(t.type === "MULTIPLE_LINE" ? "textarea" : "input", t.name, "text");
      input.value = t.value || "";
      if (t.hintText) { input.placeholder = t.hintText; }
      return labelled(t.label, input);
    }
    if (widget.selectionInput && (widget.selectionInput.type === "CHECK_BOX" || widget.selectionInput.type === "SWITCH")) {
      // Boxes to tick, as Gmail draws them: the input holds the values of those ticked, or is absent.
      var boxes = widget.selectionInput;
      node = el("div", "card-checks");
      (boxes.items || []).forEach(function (item) {
        var box = field("input", boxes.name, "check");
        box.type = "checkbox";
        box.value = item.value;
        box.checked = !!item.selected;
        var label = el("label", "card-check");
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + item.text));
        node.appendChild(label);
      });
      return node;
    }
    if (widget.selectionInput) {
      var s = widget.selectionInput;
      var select = field("select", s.name, "text");
      (s.items || []).forEach(function (item) {
        var option = el("option", null, item.text);
        option.value = item.value;
        option.selected = !!item.selected;
        select.appendChild(option);
      });
      return labelled(s.label, select);
    }
    if (widget.dateTimePicker) {
      var picker = field("input", widget.dateTimePicker.name, "datetime");
      picker.type = "datetime-local";
      return labelled(widget.dateTimePicker.label, picker);
    }
    if (widget.divider) { return el("hr"); }
    return el("p", "muted", "(a widget this preview does not draw)");
  }

  function drawSection(section) {
    var node = el("section", "card-section");
    if (section.header) { rich(node.appendChild(el("h4")), section.header); }
    var widgets = section.widgets || [];
    var shown = section.collapsible ? (section.uncollapsibleWidgetsCount || 0) : widgets.length;
    widgets.slice(0, shown).forEach(function (w) { node.appendChild(drawWidget(w)); });
    if (shown < widgets.length) {
      var more = el("details");
      more.appendChild(el("summary", null, "Show " + (widgets.length - shown) + " more"));
      widgets.slice(shown).forEach(function (w) { more.appendChild(drawWidget(w)); });
      node.appendChild(more);
    }
    return node;
  }

  function draw() {
    var body = panel.querySelector(".card-body");
    body.replaceChildren();
    var card = stack[stack.length - 1];
    if (!card) { body.appendChild(el("p", "muted", "Select an email.")); panel.querySelector(".card-footer").hidden = true; return; }
    var header = el("header", "card-header");
    if (stack.length > 1) {
      var back = el("button", "card-back", "← Back");
      back.type = "button";
      back.addEventListener("click", function () { stack.pop(); draw(); });
      header.appendChild(back);
    }
    header.appendChild(el("h3", null, (card.header && card.header.title) || ""));
    if (card.header && card.header.subtitle) { header.appendChild(el("p", "muted", card.header.subtitle)); }
    body.appendChild(header);
    (card.sections || []).forEach(function (s) { body.appendChild(drawSection(s)); });
    // The fixed footer sits below the card's scrolling body, as in Gmail: it covers nothing.
    var footer = panel.querySelector(".card-footer");
    footer.replaceChildren();
    footer.hidden = !(card.fixedFooter && card.fixedFooter.primaryButton);
    if (!footer.hidden) { footer.appendChild(drawButton(card.fixedFooter.primaryButton)); }
    var first = body.querySelector("h3");
    if (first) { first.tabIndex = -1; }
  }

  function inputs() {
    var found = {};
    panel.querySelectorAll("[data-name]").forEach(function (input) {
      if (input.getAttribute("data-kind") === "datetime") {
        if (input.value) {
          found[input.getAttribute("data-name")] = { dateTimeInput: { msSinceEpoch: String(new Date(input.value).getTime()), hasDate: true, hasTime: true } };
        }
        return;
      }
      if (input.getAttribute("data-kind") === "check") {
        if (input.checked) {
          var ticked = found[input.getAttribute("data-name")] || { stringInputs: { value: [] } };
          ticked.stringInputs.value.push(input.value);
          found[input.getAttribute("data-name")] = ticked;
        }
        return;
      }
      found[input.getAttribute("data-name")] = { stringInputs: { value: [input.value] } };
    });
    return found;
  }

  function apply(answer) {
    var action = (answer.renderActions && answer.renderActions.action) || answer.action || {};
    (action.navigations || []).forEach(function (nav) {
      if (nav.popToRoot) { stack = stack.slice(0, 1); }
      if (nav.pop) { stack.pop(); }
      if (nav.pushCard) { stack.push(nav.pushCard); }
      if (nav.updateCard) { stack[Math.max(stack.length - 1, 0)] = nav.updateCard; }
    });
    var status = panel.querySelector(".card-status");
    status.textContent = (action.notification && action.notification.text) || "";
    draw();
  }

  function run(kind, name, parameters) {
    var params = {};
    (parameters || []).forEach(function (p) { params[p.key] = p.value; });
    var event = {
      commonEventObject: { hostApp: "GMAIL", platform: "WEB", timeZone: { id: zone }, parameters: params, formInputs: kind === "action" ? inputs() : {} },
      gmail: {}
    };
    // What Gmail sends: the open message's id, or (composing) the draft's recipients.
    if (messageId) { event.gmail.messageId = messageId; }
    if (draftTo.length) { event.gmail.toRecipients = draftTo; }
    if (kind === "trigger") { stack = []; }
    // Only the latest request's answer is drawn: a mail opened while Home was loading must not
    // be overwritten by the homepage arriving after it (nor the other way round).
    var ticket = ++requests;
    panel.setAttribute("aria-busy", "true");
    return fetch("/preview/gmail/" + kind + "/" + encodeURIComponent(name), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(event)
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (ticket !== requests) { return; }
        if (!response.ok) { throw new Error(answer.error || ("The add-on answered " + response.status)); }
        apply(answer);
      });
    }).catch(function (error) {
      if (ticket === requests) { panel.querySelector(".card-status").textContent = String(error.message || error); }
    }).finally(function () { if (ticket === requests) { panel.removeAttribute("aria-busy"); } });
  }

  var current = null;

  function open(item) {
    current = item;
    if (panel.hidden) { return; }
    draftTo = [];
    if (item && item.item_type === "message") { messageId = item.id; run("trigger", "message"); }
    else { messageId = ""; run("trigger", "homepage"); }
  }

  function showHost(gmail) {
    document.getElementById("tab-outlook").setAttribute("aria-selected", String(!gmail));
    document.getElementById("tab-gmail").setAttribute("aria-selected", String(gmail));
    document.getElementById("taskpane").hidden = gmail;
    panel.hidden = !gmail;
    if (gmail) { open(current); return; }
    // Back in the Outlook pane: hand it the mail again, so it shows what the cards changed.
    var selected = document.querySelector("#mailbox button[aria-current=true]");
    if (selected) { selected.click(); }
  }

  // Registered at once (not on DOMContentLoaded): pane.js selects the first mail as soon as
  // the page is ready, and that first item must not be missed.
  document.addEventListener("inboxcrm:item", function (event) { if (panel) { open(event.detail || null); } else { current = event.detail; } });
  document.addEventListener("DOMContentLoaded", function () {
    panel = document.getElementById("gmail-panel");
    if (!panel) { return; }
    panel.querySelector(".card-home").addEventListener("click", function () { messageId = ""; draftTo = []; run("trigger", "homepage"); });
    // A reply being written to the open mail's sender: Gmail's compose trigger, with the draft's recipients.
    panel.querySelector(".card-compose").addEventListener("click", function () {
      if (!current || !current.from_address) { return; }
      messageId = "";
      draftTo = [current.from_address];
      run("trigger", "compose");
    });
    document.getElementById("tab-outlook").addEventListener("click", function () { showHost(false); });
    document.getElementById("tab-gmail").addEventListener("click", function () { showHost(true); });
    if (!panel.hidden && current) { open(current); }
  });
})();
