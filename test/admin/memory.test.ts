/** The admin API's shared suite on the memory store, on Express and Koa. */
import { memoryStore } from '@idem/core';
import { adminSuite } from './suite.js';

adminSuite('memory', { createStore: () => memoryStore() });
