// The history pages, read by a person: column titles in words (the stored name stays as the title's tooltip), and
// "no data" where a dashboard chart has nothing to draw (vega-lite would draw bare axes).
(() => {
  let embed
  Object.defineProperty(window, 'vegaEmbed', {  // vega-embed assigns itself here; the dashboard calls it with its rows
    configurable: true,
    set: (fn) => { embed = fn },
    get: () => embed && ((element, spec, options) => {
      const rows = spec.data && spec.data.values
      if (Array.isArray(rows) && rows.length === 0) {
        element.replaceChildren(Object.assign(document.createElement('p'), {className: 'amc-no-data', textContent: 'no data'}))
        return Promise.resolve()
      }
      return embed(element, spec, options)
    }),
  })
})()

window.amcompanionLabels = (labels) => {
  for (const th of document.querySelectorAll('table.rows-and-columns th')) {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const name = node.nodeValue.trim().replace(/\s*[▼▲]$/, '')
      if (labels[name]) {
        th.title = name
        node.nodeValue = node.nodeValue.replace(name, labels[name])
      }
    }
  }
}
