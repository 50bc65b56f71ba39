// The web admin's stylesheet, served from /admin/style.css (the CSP allows no inline styles).
export const STYLESHEET = `
:root { --fg: #1d2330; --muted: #6b7280; --line: #e3e6eb; --bg: #f6f7f9; --card: #fff; --accent: #2457c5; --danger: #b42318; --ok: #067647; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; background: #172033; color: #fff; flex-wrap: wrap; }
header.top a { color: #d6defa; }
header.top .brand { font-weight: 600; color: #fff; }
header.top nav { display: flex; gap: 1rem; flex: 1; }
header.top nav a.active { color: #fff; border-bottom: 2px solid #8fb0ff; }
header.top .logout { display: flex; align-items: center; gap: .6rem; margin: 0; }
header.top .who { color: #aab4c8; font-size: .9em; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: .8rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: .85em; text-transform: uppercase; letter-spacing: .03em; color: #4b5563; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.2rem; margin: 1rem 0; }
.card > h2:first-child { margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .8rem; }
.cards .card { margin: 0; }
.cards .value { font-size: 1.5rem; font-weight: 600; }
form { margin: 0; }
form.inline { display: inline; }
form.stack { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; }
label { display: flex; flex-direction: column; font-size: .85em; color: #4b5563; gap: .2rem; }
input[type=text], input[type=password], input[type=search], select { font: inherit; padding: .4rem .55rem; border: 1px solid #c8ced8; border-radius: 4px; min-width: 14rem; }
button { font: inherit; padding: .4rem .9rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--danger); border-color: var(--danger); }
button.link { background: none; border: 0; color: #d6defa; padding: 0; }
button.link:hover { text-decoration: underline; }
.flash { padding: .6rem .9rem; border-radius: 4px; border: 1px solid; }
.flash.ok { color: var(--ok); background: #ecfdf3; border-color: #abefc6; }
.flash.error { color: var(--danger); background: #fef3f2; border-color: #fecdca; }
.pager { display: flex; gap: 1rem; justify-content: center; margin: .8rem 0; }
pre.xml { white-space: pre-wrap; word-break: break-all; margin: 0; font-size: .85em; }
main.narrow { max-width: 420px; padding-top: 3rem; }
.login { margin: 0; }
.login form { display: flex; flex-direction: column; gap: .8rem; }
.login input { min-width: 0; width: 100%; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.2rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
`;
