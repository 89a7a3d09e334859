/* Steward's cookie banner (docs/banner.md): one file, no framework, nothing fetched but
   Steward's own API and stylesheet. It keeps a random device id in a first-party cookie,
   asks Steward where the visitor stands, runs the page's blocked scripts
   (<script type="text/plain" data-steward-purpose="…">) only for purposes consented to,
   and deletes a purpose's cookies when it is refused or withdrawn. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.Steward) return;
  var api = new URL(me.src, location.href).origin;
  var deviceCookie = me.getAttribute("data-cookie") || "steward_device";

  var TEXT = {
    "zh-CN": {
      title: "我们如何使用 Cookie",
      intro: "必要的 Cookie 让网站正常运行，始终启用。经您同意，我们还使用 Cookie 分析使用情况、提供个性化内容。您可以全部接受、全部拒绝，或在设置中逐项选择；之后可随时在“Cookie 设置”中更改。",
      accept: "全部接受",
      refuse: "全部拒绝",
      settings: "设置",
      settingsTitle: "Cookie 设置",
      settingsIntro: "逐项选择是否同意。您的每一次选择都会被记录，并附有经签名的同意凭证。",
      save: "保存选择",
      close: "关闭",
      always: "始终启用",
      on: "已同意",
      off: "未同意",
      cookies: "使用的 Cookie",
      days: "天",
      receipts: "下载同意凭证",
      gpc: "已遵从您的浏览器发出的全局隐私控制（GPC）信号：非必要 Cookie 均已拒绝。您仍可在设置中自行选择。",
      ok: "知道了",
      changed: "我们的隐私政策有重要变更，请重新作出选择。",
      failed: "暂时无法保存您的选择，请稍后再试。",
      version: "隐私政策版本"
    },
    en: {
      title: "How we use cookies",
      intro: "Essential cookies make this site work and are always on. With your consent we also use cookies to analyse use and to personalise what you see. Accept all, refuse all, or choose one by one in the settings; you can change your mind at any time under \u201cCookie settings\u201d.",
      accept: "Accept all",
      refuse: "Refuse all",
      settings: "Settings",
      settingsTitle: "Cookie settings",
      settingsIntro: "Choose purpose by purpose. Each choice is recorded, with a signed consent receipt.",
      save: "Save choices",
      close: "Close",
      always: "Always on",
      on: "Consented",
      off: "Not consented",
      cookies: "Cookies used",
      days: "days",
      receipts: "Download consent receipts",
      gpc: "Your browser's Global Privacy Control signal is honoured: every non-essential cookie is refused. You can still choose for yourself in the settings.",
      ok: "OK",
      changed: "Our privacy policy changed materially: please choose again.",
      failed: "Your choice could not be saved just now. Please try again later.",
      version: "Privacy policy version"
    }
  };

  function language() {
    var asked = me.getAttribute("data-lang");
    var list = asked ? [asked] : (navigator.languages || [navigator.language || ""]);
    for (var i = 0; i < list.length; i++) {
      var tag = String(list[i]).toLowerCase();
      if (tag.indexOf("zh") === 0) return "zh-CN";
      if (tag.indexOf("en") === 0) return "en";
    }
    return "zh-CN";
  }
  var lang = language();
  var t = TEXT[lang];
  var gpc = navigator.globalPrivacyControl === true;
  var state = null;
  var bar = null;
  var dialog = null;
  var returnTo = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (attrs[k] !== false && attrs[k] != null) node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  // The device id: 16 random bytes, base64url, in an essential first-party cookie.
  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return parts[i].slice(eq + 1);
    }
    return null;
  }
  function newDevice() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    var s = btoa(String.fromCharCode.apply(null, bytes));
    return s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function keepDevice(id, days) {
    document.cookie = deviceCookie + "=" + id + "; Path=/; Max-Age=" + days * 86400 +
      "; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }
  var device = readCookie(deviceCookie);
  if (!device || !/^[A-Za-z0-9_-]{22,64}$/.test(device)) {
    device = newDevice();
    keepDevice(device, 365);
  }

  function call(path, body) {
    return fetch(api + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw j && j.error ? j.error : { code: "http_" + r.status };
        return j;
      });
    });
  }

  function choosable() {
    return state.purposes.filter(function (p) { return !p.essential; });
  }

  // Runs the page's scripts held for a purpose; deletes the cookies of one refused.
  function release(purpose) {
    var held = document.querySelectorAll('script[type="text/plain"][data-steward-purpose]');
    Array.prototype.forEach.call(held, function (old) {
      if (old.getAttribute("data-steward-purpose") !== purpose) return;
      var s = document.createElement("script");
      Array.prototype.forEach.call(old.attributes, function (a) {
        if (a.name !== "type") s.setAttribute(a.name, a.value);
      });
      // A nonce is hidden from getAttribute; the property still holds it (strict CSP).
      if (old.nonce) s.nonce = old.nonce;
      s.setAttribute("data-steward-ran", "");
      s.text = old.text;
      old.parentNode.replaceChild(s, old);
    });
  }
  function forget(cookie) {
    var names = [];
    if (cookie.charAt(cookie.length - 1) === "*") {
      var prefix = cookie.slice(0, -1);
      (document.cookie ? document.cookie.split("; ") : []).forEach(function (c) {
        var n = c.slice(0, c.indexOf("="));
        if (n.indexOf(prefix) === 0) names.push(n);
      });
    } else {
      names.push(cookie);
    }
    var host = location.hostname.split(".");
    names.forEach(function (n) {
      var gone = n + "=; Path=/; Max-Age=0";
      document.cookie = gone;
      for (var i = 0; i < host.length - 1; i++) {
        document.cookie = gone + "; Domain=." + host.slice(i).join(".");
      }
    });
  }
  function apply() {
    choosable().forEach(function (p) {
      if (p.granted === true) release(p.purpose);
      else p.cookies.forEach(function (c) { forget(c.name); });
    });
    document.dispatchEvent(new CustomEvent("steward:consent", { detail: state }));
  }

  function choose(choices, action) {
    return call("/v1/visitor/consents", { device: device, action: action, choices: choices, receipts: false })
      .then(function () { return call("/v1/visitor/state", { device: device, gpc: gpc, lang: lang }); })
      .then(function (s) { state = s; apply(); });
  }
  function everything(granted) {
    return choosable().map(function (p) { return { purpose: p.purpose, granted: granted }; });
  }

  function failed(where) {
    var old = where.querySelector(".stw-error");
    if (old) old.parentNode.removeChild(old);
    where.appendChild(el("p", { "class": "stw-error", role: "alert", text: t.failed }));
  }

  // Keeps the page's focused element in view above the bar (WCAG 2.4.11): the page is padded
  // by the bar's height while it shows, and given back its own padding after.
  var padding = null;
  function reserve() {
    var style = document.body.style;
    if (bar) {
      if (padding === null) padding = style.paddingBottom;
      style.paddingBottom = bar.offsetHeight + "px";
    } else if (padding !== null) {
      style.paddingBottom = padding;
      padding = null;
    }
  }
  document.addEventListener("focusin", function (e) {
    if (!bar || bar.contains(e.target) || (dialog && dialog.contains(e.target))) return;
    var r = e.target.getBoundingClientRect();
    var top = bar.getBoundingClientRect().top;
    if (r.bottom > top) window.scrollBy(0, r.bottom - top + 8);
  });

  function closeBar() {
    if (!bar) return;
    var wasIn = bar.contains(document.activeElement);
    bar.parentNode.removeChild(bar);
    bar = null;
    reserve();
    if (wasIn) back();
  }
  function back() {
    var to = returnTo && document.contains(returnTo) ? returnTo : null;
    returnTo = null;
    if (to && to.focus) to.focus();
  }
  function remember() {
    var a = document.activeElement;
    if (a && a !== document.body && !(bar && bar.contains(a))) returnTo = a;
  }

  // The first layer: a non-modal dialog at the foot of the page, three equal buttons.
  function showBar(notice) {
    if (bar) return;
    remember();
    var buttons = notice === "gpc"
      ? [el("button", { type: "button", "class": "stw-btn", "data-act": "ok", text: t.ok }),
         el("button", { type: "button", "class": "stw-btn", "data-act": "settings", text: t.settings })]
      : [el("button", { type: "button", "class": "stw-btn", "data-act": "accept", text: t.accept }),
         el("button", { type: "button", "class": "stw-btn", "data-act": "refuse", text: t.refuse }),
         el("button", { type: "button", "class": "stw-btn", "data-act": "settings", text: t.settings })];
    var inner = el("div", { "class": "stw-inner" }, [
      el("h2", { id: "stw-title", text: t.title }),
      notice === "changed" ? el("p", { "class": "stw-note", text: t.changed }) : null,
      notice === "gpc" ? el("p", { "class": "stw-note", text: t.gpc }) : el("p", { id: "stw-intro", text: t.intro }),
      el("div", { "class": "stw-actions" }, buttons)
    ]);
    bar = el("section", {
      "class": "stw stw-bar", role: "dialog", "aria-modal": "false", "aria-labelledby": "stw-title",
      "aria-describedby": notice === "gpc" ? null : "stw-intro", lang: lang, tabindex: "-1"
    }, [inner]);
    bar.addEventListener("click", function (e) {
      var act = e.target.getAttribute && e.target.getAttribute("data-act");
      if (act === "ok") closeBar();
      else if (act === "settings") openSettings();
      else if (act === "accept" || act === "refuse") {
        choose(everything(act === "accept"), "button").then(closeBar, function () { failed(inner); });
      }
    });
    bar.addEventListener("keydown", function (e) {
      if (e.key === "Escape") back();
    });
    document.body.appendChild(bar);
    reserve();
    bar.focus();
  }

  // The second layer: a modal dialog, a labelled switch per purpose.
  function openSettings() {
    if (!state) return;
    if (dialog) dialog.parentNode.removeChild(dialog);
    if (!bar || !bar.contains(document.activeElement)) remember();
    var items = state.purposes.map(function (p, i) {
      var id = "stw-p" + i;
      var sw = el("input", {
        type: "checkbox", role: "switch", "class": "stw-sw", id: id, "data-purpose": p.purpose,
        "aria-describedby": id + "-d " + id + "-c",
        checked: p.essential || p.granted === true, disabled: p.essential
      });
      var cookies = el("ul", { "class": "stw-cookies", id: id + "-c", "aria-label": t.cookies },
        p.cookies.map(function (c) {
          return el("li", { text: c.name + " \u2014 " + c.description + " (" + c.lifetime_days + " " + t.days + ")" });
        }));
      return el("li", { "class": "stw-item" }, [
        el("div", { "class": "stw-row" }, [el("label", { "for": id, text: p.description }), sw]),
        el("p", { "class": "stw-desc", id: id + "-d", text: p.essential ? t.always : "" }),
        cookies
      ]);
    });
    var body = el("div", {}, [
      el("div", { "class": "stw-head" }, [
        el("h2", { id: "stw-stitle", text: t.settingsTitle }),
        el("button", { type: "button", "class": "stw-x", "data-act": "close", "aria-label": t.close, text: "\u00d7" })
      ]),
      state.gpc ? el("p", { "class": "stw-note", text: t.gpc }) : null,
      el("p", { text: t.settingsIntro }),
      el("ul", { "class": "stw-list" }, items),
      el("div", { "class": "stw-foot" }, [
        el("button", { type: "button", "class": "stw-btn", "data-act": "accept", text: t.accept }),
        el("button", { type: "button", "class": "stw-btn", "data-act": "refuse", text: t.refuse }),
        el("button", { type: "button", "class": "stw-btn", "data-act": "save", text: t.save })
      ]),
      el("p", { "class": "stw-desc", text: t.version + ": " + state.policy_version }),
      el("button", { type: "button", "class": "stw-link", "data-act": "receipts", text: t.receipts })
    ]);
    dialog = el("dialog", { "class": "stw stw-dlg", "aria-labelledby": "stw-stitle", lang: lang }, [body]);
    function label(sw) {
      var d = sw.parentNode.parentNode.querySelector(".stw-desc");
      if (!sw.disabled) d.textContent = sw.checked ? t.on : t.off;
    }
    Array.prototype.forEach.call(dialog.querySelectorAll(".stw-sw"), function (sw) {
      label(sw);
      sw.addEventListener("change", function () { label(sw); });
    });
    dialog.addEventListener("click", function (e) {
      var act = e.target.getAttribute && e.target.getAttribute("data-act");
      if (act === "close") return shut();
      if (act === "receipts") return download(body);
      var choices;
      if (act === "accept" || act === "refuse") choices = everything(act === "accept");
      else if (act === "save") {
        choices = [];
        Array.prototype.forEach.call(dialog.querySelectorAll(".stw-sw:not(:disabled)"), function (sw) {
          var p = state.purposes.filter(function (x) { return x.purpose === sw.getAttribute("data-purpose"); })[0];
          if (state.reprompt || p.granted !== sw.checked) choices.push({ purpose: p.purpose, granted: sw.checked });
        });
        if (!choices.length) return shut();
      } else return;
      choose(choices, act === "save" ? "toggle" : "button").then(function () {
        closeBar();
        shut();
      }, function () { failed(body); });
    });
    dialog.addEventListener("close", function () {
      if (dialog && dialog.parentNode) dialog.parentNode.removeChild(dialog);
      dialog = null;
      if (bar) bar.focus(); else back();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  }
  function shut() {
    if (dialog) dialog.close();
  }

  function download(where) {
    call("/v1/visitor/receipts", { device: device }).then(function (r) {
      var blob = new Blob([JSON.stringify(r, null, 2)], { type: "application/json" });
      var a = el("a", { href: URL.createObjectURL(blob), download: "consent-receipts.json" });
      document.body.appendChild(a);
      a.click();
      document.body.removeChild(a);
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
    }, function () { failed(where); });
  }

  function start(retried) {
    call("/v1/visitor/state", { device: device, gpc: gpc, lang: lang }).then(function (s) {
      state = s;
      var cookie = null;
      s.purposes.forEach(function (p) {
        p.cookies.forEach(function (c) { if (c.name === deviceCookie) cookie = c; });
      });
      if (cookie) keepDevice(device, cookie.lifetime_days);
      apply();
      if (s.reprompt) showBar("changed");
      else if (!s.decided) showBar(null);
      else if (s.gpc_applied) showBar("gpc");
    }, function (e) {
      // An erased visitor starts again as a new one.
      if (!retried && e && e.code === "subject_erased") {
        device = newDevice();
        keepDevice(device, 365);
        start(true);
      }
    });
  }

  var css = el("link", { rel: "stylesheet", href: api + "/banner.css" });
  document.head.appendChild(css);
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("[data-steward-settings]");
    if (link) {
      e.preventDefault();
      openSettings();
    }
  });
  window.Steward = { open: openSettings, state: function () { return state; } };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { start(false); });
  else start(false);
})();
