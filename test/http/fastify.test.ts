import { fastifyAdapter } from '../apps/fastify-app.js';
import { httpScenarios } from './scenarios.js';

httpScenarios(fastifyAdapter('Fastify 5'));
