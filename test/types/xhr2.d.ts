// xhr2 (XMLHttpRequest for Node, which ships no types): only its constructor is used, as the global a browser has.
declare module 'xhr2' {
  const XMLHttpRequest: new () => object;
  export default XMLHttpRequest;
}
