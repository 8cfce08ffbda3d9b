// Line icons drawn inline (no icon font, nothing fetched): 24×24, stroked with currentColor.
const PATHS = {
  heart: "M12 21s-7.5-4.6-9.6-9.4C1 8.2 3.2 4.5 6.9 4.5c2.1 0 3.6 1.2 5.1 3 1.5-1.8 3-3 5.1-3 3.7 0 5.9 3.7 4.5 7.1C19.5 16.4 12 21 12 21z",
  comment: "M4 5h16v11H9l-5 4z",
  bookmark: "M6 3h12v18l-6-5-6 5z",
  send: "M22 3L11 13M22 3l-7 18-4-8-8-4z",
};

export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon-${name}`);
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  return svg;
}
