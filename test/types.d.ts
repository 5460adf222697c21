// Express 4 and Koa 2 are installed under aliases so both majors run the same suites.
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
