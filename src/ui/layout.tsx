// The page frame: a few lines of inline CSS, nothing fetched (no CDN, no bundle, no font, no image).
import type { Child } from 'hono/jsx';

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cfd8ea;text-decoration:none}header a:hover{color:#fff}header b{font-size:16px}
main{padding:16px 20px;max-width:1100px}
h1{font-size:20px;margin:8px 0 14px}h2{font-size:16px;margin:20px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:22px;font-weight:600}.card .k{color:#5b6475;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #dde1e8;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef1f5}
.bar{height:8px;background:#e3e7ee;border-radius:4px;overflow:hidden;margin-top:6px}.bar i{display:block;height:8px;background:#3d7be0}
.ok{color:#17803d}.bad{color:#b42318}.muted{color:#5b6475}
form.inline{display:flex;gap:8px;align-items:center;margin:8px 0}
input{padding:4px 6px}button{padding:4px 10px;cursor:pointer}
#purge-result{font-weight:600}
`;

export function Layout(props: { title: string; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · nuproxy</title>
        <style>{CSS}</style>
      </head>
      <body>
        <header>
          <b>nuproxy</b>
          <a href="/ui">Overview</a>
          <a href="/ui/packages">Packages</a>
          <a href="/metrics">Metrics</a>
        </header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}
