// Build helpers: the functions tsc, esbuild and vitest inject into compiled
// function bodies (__name, __awaiter, __spreadValues, ...).
//
// - BUILD_HELPER_NAMES: their names; the driver's free-variable check
//   (freeVariables() in source.ts) treats them as worker globals.
// - BUILD_HELPERS_SOURCE: working definitions of them, as script text; a
//   worker runs it once (installBuildHelpers()) before compiling shipped
//   functions.

import * as vm from 'node:vm';

/** Helpers tsc, esbuild and vitest inject into compiled function bodies. */
export const BUILD_HELPER_NAMES: readonly string[] = [
  '__name',
  '__publicField',
  '__defProp',
  '__awaiter',
  '__generator',
  '__async',
  '__spreadValues',
  '__spreadProps',
  '__objRest',
  '__export',
  '__toESM',
  '__require',
  '__defNormalProp',
  '__defProps',
  '__getOwnPropDescs',
  '__getOwnPropSymbols',
  '__getOwnPropNames',
  '__getOwnPropDesc',
  '__getProtoOf',
  '__hasOwnProp',
  '__propIsEnum',
  '__create',
  '__copyProps',
  '__vite_ssr_dynamic_import__',
  '__rayts_dynamic_import__', // import() rewritten by compileFunction; bound again in every worker
];

/**
 * Defines, on globalThis, working versions of the helpers tsc/esbuild inject
 * into function bodies. Run once per worker (installBuildHelpers()).
 */
export const BUILD_HELPERS_SOURCE = String.raw`(function () {
  "use strict";
  var g = globalThis;
  function def(name, value) {
    if (typeof g[name] === "undefined") Object.defineProperty(g, name, { value: value, writable: true, configurable: true });
  }
  var __defProp = Object.defineProperty;
  var __hasOwnProp = Object.prototype.hasOwnProperty;
  var __propIsEnum = Object.prototype.propertyIsEnumerable;
  var __getOwnPropSymbols = Object.getOwnPropertySymbols;
  var __getOwnPropNames = Object.getOwnPropertyNames;
  var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
  var __defNormalProp = function (obj, key, value) {
    return key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value: value }) : (obj[key] = value);
  };
  var __copyProps = function (to, from, except) {
    if ((from && typeof from === "object") || typeof from === "function") {
      __getOwnPropNames(from).forEach(function (key) {
        if (!__hasOwnProp.call(to, key) && key !== except) {
          var desc = __getOwnPropDesc(from, key);
          __defProp(to, key, { get: function () { return from[key]; }, enumerable: !desc || desc.enumerable });
        }
      });
    }
    return to;
  };
  def("__defProp", __defProp);
  def("__hasOwnProp", __hasOwnProp);
  def("__propIsEnum", __propIsEnum);
  def("__getOwnPropSymbols", __getOwnPropSymbols);
  def("__getOwnPropNames", __getOwnPropNames);
  def("__getOwnPropDesc", __getOwnPropDesc);
  def("__getOwnPropDescs", Object.getOwnPropertyDescriptors);
  def("__defProps", Object.defineProperties);
  def("__getProtoOf", Object.getPrototypeOf);
  def("__create", Object.create);
  def("__defNormalProp", __defNormalProp);
  def("__copyProps", __copyProps);
  def("__name", function (target, value) {
    return __defProp(target, "name", { value: value, configurable: true });
  });
  def("__publicField", function (obj, key, value) {
    __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);
    return value;
  });
  def("__spreadValues", function (a, b) {
    for (var prop in b || (b = {})) if (__hasOwnProp.call(b, prop)) __defNormalProp(a, prop, b[prop]);
    __getOwnPropSymbols(b).forEach(function (sym) {
      if (__propIsEnum.call(b, sym)) __defNormalProp(a, sym, b[sym]);
    });
    return a;
  });
  def("__spreadProps", function (a, b) {
    return Object.defineProperties(a, Object.getOwnPropertyDescriptors(b));
  });
  def("__objRest", function (source, exclude) {
    var target = {};
    for (var prop in source) if (__hasOwnProp.call(source, prop) && exclude.indexOf(prop) < 0) target[prop] = source[prop];
    if (source != null)
      __getOwnPropSymbols(source).forEach(function (sym) {
        if (exclude.indexOf(sym) < 0 && __propIsEnum.call(source, sym)) target[sym] = source[sym];
      });
    return target;
  });
  def("__export", function (target, all) {
    for (var name in all) __defProp(target, name, { get: all[name], enumerable: true });
  });
  def("__toESM", function (mod, isNodeMode) {
    var target = mod != null ? Object.create(Object.getPrototypeOf(mod)) : {};
    return __copyProps(
      isNodeMode || !mod || !mod.__esModule ? __defProp(target, "default", { value: mod, enumerable: true }) : target,
      mod
    );
  });
  var req;
  try {
    var nodeModule = typeof process.getBuiltinModule === "function" ? process.getBuiltinModule("node:module") : null;
    if (nodeModule) req = nodeModule.createRequire(process.cwd() + "/noop.js");
  } catch (e) {}
  def("__require", function (id) {
    if (req) return req(id);
    throw new Error('Dynamic require of "' + id + '" is not supported');
  });
  def("__async", function (__this, __arguments, generator) {
    return new Promise(function (resolve, reject) {
      var fulfilled = function (value) {
        try { step(generator.next(value)); } catch (e) { reject(e); }
      };
      var rejected = function (value) {
        try { step(generator.throw(value)); } catch (e) { reject(e); }
      };
      var step = function (x) {
        return x.done ? resolve(x.value) : Promise.resolve(x.value).then(fulfilled, rejected);
      };
      step((generator = generator.apply(__this, __arguments)).next());
    });
  });
  def("__awaiter", function (thisArg, _arguments, P, generator) {
    function adopt(value) {
      return value instanceof P ? value : new P(function (resolve) { resolve(value); });
    }
    return new (P || (P = Promise))(function (resolve, reject) {
      function fulfilled(value) {
        try { step(generator.next(value)); } catch (e) { reject(e); }
      }
      function rejected(value) {
        try { step(generator["throw"](value)); } catch (e) { reject(e); }
      }
      function step(result) {
        result.done ? resolve(result.value) : adopt(result.value).then(fulfilled, rejected);
      }
      step((generator = generator.apply(thisArg, _arguments || [])).next());
    });
  });
  def("__generator", function (thisArg, body) {
    var _ = { label: 0, sent: function () { if (t[0] & 1) throw t[1]; return t[1]; }, trys: [], ops: [] }, f, y, t,
      g = Object.create((typeof Iterator === "function" ? Iterator : Object).prototype);
    return (g.next = verb(0)), (g["throw"] = verb(1)), (g["return"] = verb(2)),
      typeof Symbol === "function" && (g[Symbol.iterator] = function () { return this; }), g;
    function verb(n) { return function (v) { return step([n, v]); }; }
    function step(op) {
      if (f) throw new TypeError("Generator is already executing.");
      while ((g && ((g = 0), op[0] && (_ = 0)), _))
        try {
          if (((f = 1), y && (t = op[0] & 2 ? y["return"] : op[0] ? y["throw"] || ((t = y["return"]) && t.call(y), 0) : y.next) && !(t = t.call(y, op[1])).done))
            return t;
          if (((y = 0), t)) op = [op[0] & 2, t.value];
          switch (op[0]) {
            case 0: case 1: t = op; break;
            case 4: _.label++; return { value: op[1], done: false };
            case 5: _.label++; y = op[1]; op = [0]; continue;
            case 7: op = _.ops.pop(); _.trys.pop(); continue;
            default:
              if (!((t = _.trys), (t = t.length > 0 && t[t.length - 1])) && (op[0] === 6 || op[0] === 2)) { _ = 0; continue; }
              if (op[0] === 3 && (!t || (op[1] > t[0] && op[1] < t[3]))) { _.label = op[1]; break; }
              if (op[0] === 6 && _.label < t[1]) { _.label = t[1]; t = op; break; }
              if (t && _.label < t[2]) { _.label = t[2]; _.ops.push(op); break; }
              if (t[2]) _.ops.pop();
              _.trys.pop(); continue;
          }
          op = body.call(thisArg, _);
        } catch (e) { op = [6, e]; y = 0; } finally { f = t = 0; }
      if (op[0] & 5) throw op[1];
      return { value: op[0] ? op[1] : void 0, done: true };
    }
  });
})();
`;

let helpersInstalled = false;

/** Runs BUILD_HELPERS_SOURCE once in this process. */
export function installBuildHelpers(): void {
  if (helpersInstalled) return;
  vm.runInThisContext(BUILD_HELPERS_SOURCE, { filename: 'rayts:build-helpers.js' });
  helpersInstalled = true;
}
