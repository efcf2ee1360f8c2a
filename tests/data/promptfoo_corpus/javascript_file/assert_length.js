module.exports = (output, context) => {
  const words = output.split(' ').length;
  return {pass: words === 7, score: words === 7 ? 1 : 0, reason: `${words} words`};
};

module.exports.mentionsArticle = (output, context) => output.includes(context.vars.article);
