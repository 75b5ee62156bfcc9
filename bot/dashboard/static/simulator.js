// The SMS simulator page (dashboard/simulator.html): a phone-like thread for one number, polled
// every few seconds so texts the bot sends on its own (alerts, invitations) show up too.
// No inline script anywhere: the Content-Security-Policy forbids it.
(() => {
  "use strict";
  const POLL_MS = 2500;

  function start() {
    const log = document.getElementById("log");
    if (!log) return;
    const picker = document.getElementById("phone");
    const demo = document.getElementById("demo-phone");
    const demoLabel = document.getElementById("demo-phone-label");
    const composer = document.getElementById("composer");
    const input = document.getElementById("text");
    const error = document.getElementById("error");
    const title = document.getElementById("thread-title");
    const csrf = document.querySelector('meta[name="csrf-token"]');
    let shown = "";     // "<phone>:<last id>:<count>" of the thread on screen
    let timer = null;
    let busy = false;
    let again = false;  // a refresh was asked for while one was in flight

    const currentPhone = () => (picker.value || demo.value).trim();

    function signedOut() {
      error.textContent = "";
      const link = document.createElement("a");
      link.href = log.dataset.loginUrl;
      link.textContent = "sign in again";
      error.append("Your session has ended: ", link, ".");
      if (timer) clearInterval(timer);
      timer = null;
    }

    function render(phone, messages) {
      const key = phone + ":" + (messages.length ? messages[messages.length - 1].id : 0) + ":" + messages.length;
      if (key === shown) return;
      shown = key;
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      log.replaceChildren(...messages.map((m) => {
        const div = document.createElement("div");
        div.className = "bubble " + (m.direction === "in" ? "in" : "out");
        div.textContent = m.body;
        return div;
      }));
      if (!messages.length) {
        const empty = document.createElement("p");
        empty.className = "phone-empty";
        empty.textContent = "No texts yet with this number.";
        log.append(empty);
      }
      if (atBottom || messages.length) log.scrollTop = log.scrollHeight;
    }

    async function refresh() {
      const phone = currentPhone();
      if (!phone) return;
      if (busy) { again = true; return; }
      busy = true;
      try {
        const res = await fetch(log.dataset.messagesUrl + "?phone=" + encodeURIComponent(phone), {
          headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin",
        });
        if (res.status === 401) return signedOut();
        const data = await res.json();
        if (!res.ok) {
          error.textContent = data.error || "Could not load the thread.";
          return;
        }
        if (error.textContent && !composer.dataset.error) error.textContent = "";
        if (phone === currentPhone()) render(data.phone, data.messages || []);
      } catch (exc) {
        error.textContent = "The server is not answering; retrying.";
      } finally {
        busy = false;
        if (again && timer) { again = false; refresh(); }
      }
    }

    function numberChanged() {
      demoLabel.hidden = picker.value !== "";
      const option = picker.options[picker.selectedIndex];
      title.textContent = picker.value ? option.textContent.split(" (")[0] : "Demo number " + demo.value.trim();
      shown = "";
      log.replaceChildren();
      error.textContent = "";
      refresh();
    }

    composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value;
      if (!text.trim()) return;
      input.value = "";
      delete composer.dataset.error;
      try {
        const res = await fetch(log.dataset.sendUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "X-CSRFToken": csrf ? csrf.content : "",
          },
          body: JSON.stringify({ phone: currentPhone(), text }),
        });
        if (res.status === 401) return signedOut();
        const data = await res.json().catch(() => ({ error: "The text was not accepted (" + res.status + ")." }));
        if (data.error) {
          composer.dataset.error = "1";
          error.textContent = data.error;
          input.value = text;
        } else {
          error.textContent = "";
        }
      } catch (exc) {
        error.textContent = "The server is not answering; the text was not sent.";
        input.value = text;
      }
      await refresh();
      input.focus();
    });

    picker.addEventListener("change", numberChanged);
    demo.addEventListener("change", numberChanged);
    numberChanged();
    timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
