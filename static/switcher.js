// The top bar's tenant switcher: search as you type (the server searches; this only shows what it
// answers), recently used tenants when nothing is typed, "/" to jump to it, Escape to leave it.
// Without script the form still works: it opens the switcher page (or the only match).
"use strict";

// Tenant fields of role forms (`data-tenant-picker`): the server's matches fill the field's
// datalist as the person types, each offered by slug. Without script the field takes a slug or part
// of a name, and the form comes back with the matches to pick from.
(function () {
  document.querySelectorAll("input[data-tenant-picker]").forEach((field) => {
    const choices = field.list;
    if (!choices) return;
    let latest = 0;
    let timer;
    field.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const asked = ++latest;
        try {
          const response = await fetch("/tenants/suggest?" + new URLSearchParams({ q: field.value.trim() }), {
            credentials: "same-origin",
            headers: { Accept: "application/json" },
          });
          if (!response.ok || asked !== latest) return;
          const tenants = await response.json();
          choices.replaceChildren(...tenants.map((tenant) => {
            const option = document.createElement("option");
            option.value = tenant.slug;
            option.label = tenant.name;
            return option;
          }));
        } catch (_) {
          // The form still takes what was typed.
        }
      }, 120);
    });
  });
})();

(function () {
  const input = document.getElementById("tenant-switcher");
  const list = document.getElementById("tenant-suggestions");
  if (!input || !list) return;

  // The same kind of page in the next tenant: Credentials of Acme → Credentials of Globex.
  const section = (() => {
    const parts = window.location.pathname.split("/");
    if (parts[1] !== "t" || parts.length < 4) return "";
    return parts[3] === "grants" ? "credentials" : parts[3];
  })();

  let latest = 0;
  const show = (tenants) => {
    list.replaceChildren();
    tenants.forEach((tenant) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = tenant.href;
      link.textContent = tenant.name;
      link.setAttribute("role", "option");
      const slug = document.createElement("span");
      slug.className = "slug";
      slug.textContent = tenant.recent ? tenant.slug + " · recent" : tenant.slug;
      link.append(" ", slug);
      item.append(link);
      list.append(item);
    });
    if (tenants.length === 0) {
      const item = document.createElement("li");
      item.className = "empty";
      item.textContent = input.value.trim() ? "No tenant matches." : "No tenants yet.";
      list.append(item);
    }
    list.hidden = false;
  };

  const search = async () => {
    const asked = ++latest;
    const query = new URLSearchParams({ q: input.value.trim(), then: section });
    try {
      const response = await fetch("/tenants/suggest?" + query, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok || asked !== latest) return;
      show(await response.json());
    } catch (_) {
      // Offline or signed out: the form still submits to the switcher page.
    }
  };

  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 120);
  });
  input.addEventListener("focus", search);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      list.hidden = true;
      input.blur();
    } else if (event.key === "ArrowDown") {
      const first = list.querySelector("a");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  list.addEventListener("keydown", (event) => {
    const links = Array.from(list.querySelectorAll("a"));
    const at = links.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && at < links.length - 1) {
      event.preventDefault();
      links[at + 1].focus();
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      (at > 0 ? links[at - 1] : input).focus();
    } else if (event.key === "Escape") {
      list.hidden = true;
      input.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".switcher")) list.hidden = true;
  });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      input.focus();
    }
  });
})();
