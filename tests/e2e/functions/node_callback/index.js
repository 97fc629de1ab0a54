// Callback-style handler (no promise returned).
exports.handler = function (event, context, callback) {
  setImmediate(() => callback(null, { via: "callback", sum: (event.a || 0) + (event.b || 0) }));
};
