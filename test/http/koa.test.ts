import Koa from 'koa';
import Koa2 from 'koa2';
import { koaAdapter } from '../apps/koa-app.js';
import { httpScenarios } from './scenarios.js';

httpScenarios(koaAdapter('Koa 3', Koa));
httpScenarios(koaAdapter('Koa 2', Koa2 as never));
