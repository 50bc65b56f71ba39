// The chat page's one script of our own, an ES module: it reads the settings the server put in the page as JSON
// (a data block, not inline script, so the page's CSP can forbid inline scripts) and starts Converse.js with them.
/** Served at /chat/<INIT_NAME>, a name the package's dist/ does not use. */
export const INIT_NAME = 'parley-init.js';

export const INIT_SCRIPT = `import converse from '/chat/converse.min.js';

// Converse's own footer shows sponsor logos fetched from other sites; a custom element defined before
// initialize() takes its place (Converse registers its elements only where the name is still free).
customElements.define('converse-footer', class extends HTMLElement {
  connectedCallback() {
    const p = document.createElement('p');
    p.className = 'text-center subdued brand-subtitle py-3';
    p.textContent = 'Converse.js, open-source XMPP chat';
    this.replaceChildren(p);
  }
});

const el = document.getElementById('parley-chat-config');
converse.initialize(JSON.parse(el ? el.textContent : '{}'));
`;
