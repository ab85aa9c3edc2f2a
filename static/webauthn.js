// Passkey ceremonies for the console. No inline script anywhere (the CSP forbids it): pages mark
// forms with data attributes and this file does the rest.
//
//   <form data-webauthn="create|get|discover" data-options="{…server JSON…}">
//     <input type="hidden" name="credential">
//
// On submit the browser runs the ceremony, the JSON answer goes into `credential`, and the form is
// posted as usual. The server keeps the ceremony state; nothing here is trusted by it.
"use strict";

(function () {
  const b64urlToBuffer = (value) => {
    const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    const binary = atob(padded);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  };
  const bufferToB64url = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    bytes.forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const creationOptions = (json) => {
    const options = JSON.parse(json).publicKey;
    options.challenge = b64urlToBuffer(options.challenge);
    options.user.id = b64urlToBuffer(options.user.id);
    (options.excludeCredentials || []).forEach((c) => { c.id = b64urlToBuffer(c.id); });
    return options;
  };
  const requestOptions = (json) => {
    const parsed = JSON.parse(json);
    const options = parsed.publicKey;
    options.challenge = b64urlToBuffer(options.challenge);
    (options.allowCredentials || []).forEach((c) => { c.id = b64urlToBuffer(c.id); });
    return { publicKey: options, mediation: parsed.mediation };
  };

  const registrationJson = (credential) => JSON.stringify({
    id: credential.id,
    rawId: bufferToB64url(credential.rawId),
    type: credential.type,
    extensions: credential.getClientExtensionResults(),
    response: {
      attestationObject: bufferToB64url(credential.response.attestationObject),
      clientDataJSON: bufferToB64url(credential.response.clientDataJSON),
      transports: credential.response.getTransports ? credential.response.getTransports() : undefined,
    },
  });
  const assertionJson = (credential) => JSON.stringify({
    id: credential.id,
    rawId: bufferToB64url(credential.rawId),
    type: credential.type,
    extensions: credential.getClientExtensionResults(),
    response: {
      authenticatorData: bufferToB64url(credential.response.authenticatorData),
      clientDataJSON: bufferToB64url(credential.response.clientDataJSON),
      signature: bufferToB64url(credential.response.signature),
      userHandle: credential.response.userHandle ? bufferToB64url(credential.response.userHandle) : null,
    },
  });

  const showError = (form, message) => {
    const box = form.querySelector("[data-webauthn-error]");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  };
  const explain = (error) => {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out. Try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This authenticator already holds a passkey for your account.";
    }
    return "Your browser could not use a passkey here" + (error && error.message ? ": " + error.message : ".");
  };

  const submitWith = (form, json) => {
    form.querySelector('input[name="credential"]').value = json;
    form.dataset.webauthnDone = "1";
    form.submit();
  };

  let conditionalAbort = null;

  const run = async (form) => {
    const kind = form.dataset.webauthn;
    if (!window.PublicKeyCredential) {
      showError(form, "This browser does not support passkeys.");
      return;
    }
    try {
      if (kind === "create") {
        const name = form.querySelector('input[name="name"]');
        if (name && !name.value.trim()) {
          showError(form, "Give the passkey a name first.");
          name.focus();
          return;
        }
        const credential = await navigator.credentials.create({ publicKey: creationOptions(form.dataset.options) });
        submitWith(form, registrationJson(credential));
      } else {
        if (conditionalAbort) {
          conditionalAbort.abort();
          conditionalAbort = null;
        }
        const { publicKey } = requestOptions(form.dataset.options);
        const credential = await navigator.credentials.get({ publicKey });
        submitWith(form, assertionJson(credential));
      }
    } catch (error) {
      showError(form, explain(error));
    }
  };

  // Browser autofill ("conditional UI"): passkeys offered in the e-mail field's suggestions.
  const startConditional = async (form) => {
    if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable) return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    conditionalAbort = new AbortController();
    try {
      const { publicKey } = requestOptions(form.dataset.options);
      const credential = await navigator.credentials.get({
        publicKey, mediation: "conditional", signal: conditionalAbort.signal,
      });
      submitWith(form, assertionJson(credential));
    } catch (_) {
      // Aborted for a button press, or dismissed: nothing to say.
    }
  };

  const downloadCodes = (list) => {
    const text = Array.from(list.querySelectorAll("code")).map((c) => c.textContent).join("\n") + "\n";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    link.download = "token-broker-recovery-codes.txt";
    document.body.appendChild(link);
    link.click();
    link.remove();
  };

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-webauthn]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (form.dataset.webauthnDone) return;
        event.preventDefault();
        run(form);
      });
      if (form.dataset.webauthn === "discover") startConditional(form);
    });
    document.querySelectorAll("[data-copy-codes]").forEach((button) => {
      button.addEventListener("click", () => {
        const list = document.querySelector(button.dataset.copyCodes);
        const text = Array.from(list.querySelectorAll("code")).map((c) => c.textContent).join("\n");
        navigator.clipboard.writeText(text).then(() => { button.textContent = "Copied"; });
      });
    });
    document.querySelectorAll("[data-download-codes]").forEach((button) => {
      button.addEventListener("click", () => downloadCodes(document.querySelector(button.dataset.downloadCodes)));
    });
    // The step-up "continue" page re-posts the saved action by itself (a button remains for no-JS).
    document.querySelectorAll("form[data-autosubmit]").forEach((form) => form.submit());
  });
})();
